"""Ground Truth output manifest lines as SageMaker writes them, and the images they point at.

Two bounding-box jobs disagree on class ids: `site-a-boxes` has 0=vest, 1=helmet; `site-b-boxes` has
0=helmet, 1=goggles, 2=vest. Two classification jobs disagree too: `ppe-compliance` (class-name only, ids
0=compliant, 1=non_compliant) and `ppe-compliance-recheck` (class-map 0=non_compliant, 1=compliant).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Image sizes the manifests declare; the test images are written with exactly these sizes.
SIZES = {"img1.jpg": (640, 480), "img2.jpg": (1000, 800), "img3.jpg": (320, 240), "img4.jpg": (320, 240)}

SITE_A_BOXES = [
    '{"source-ref":"s3://ppe-labelling/site-a/img1.jpg","site-a-boxes":{"image_size":[{"width":640,"height":480,'
    '"depth":3}],"annotations":[{"class_id":0,"top":120,"left":100,"height":240,"width":200},{"class_id":1,"top":20,'
    '"left":160,"height":48,"width":64}]},"site-a-boxes-metadata":{"objects":[{"confidence":0.92},{"confidence":0.88}],'
    '"class-map":{"0":"vest","1":"helmet"},"type":"groundtruth/object-detection","human-annotated":"yes",'
    '"creation-date":"2026-11-20T10:02:11.513394","job-name":"labeling-job/site-a-boxes"}}',
    # Ground Truth writes only the metadata (with failure-reason) for an image the workers could not label.
    '{"source-ref":"s3://ppe-labelling/site-a/img5.jpg","site-a-boxes-metadata":{"failure-reason":"ClientError: '
    'annotation task expired","type":"groundtruth/object-detection","job-name":"labeling-job/site-a-boxes"}}',
]

SITE_B_BOXES = [
    '{"source-ref":"s3://ppe-labelling/site-b/img2.jpg","site-b-boxes":{"image_size":[{"width":1000,"height":800,'
    '"depth":3}],"annotations":[{"class_id":0,"top":50,"left":450,"height":80,"width":100},{"class_id":2,"top":200,'
    '"left":400,"height":300,"width":200},{"class_id":1,"top":90,"left":470,"height":20,"width":60}]},'
    '"site-b-boxes-metadata":{"objects":[{"confidence":0.95},{"confidence":0.91},{"confidence":0.7}],"class-map":'
    '{"0":"helmet","1":"goggles","2":"vest"},"type":"groundtruth/object-detection","human-annotated":"yes",'
    '"creation-date":"2026-11-21T08:15:40.001122","job-name":"labeling-job/site-b-boxes"}}',
    # The same photo as site A's img1, labelled again by the site B job: boxes must merge onto one image.
    '{"source-ref":"s3://ppe-labelling/site-a/img1.jpg","site-b-boxes":{"image_size":[{"width":640,"height":480,'
    '"depth":3}],"annotations":[{"class_id":1,"top":60,"left":180,"height":12,"width":32}]},"site-b-boxes-metadata":'
    '{"objects":[{"confidence":0.81}],"class-map":{"0":"helmet","1":"goggles","2":"vest"},"type":'
    '"groundtruth/object-detection","human-annotated":"yes","creation-date":"2026-11-21T08:16:02.998877",'
    '"job-name":"labeling-job/site-b-boxes"}}',
]

COMPLIANCE = [
    '{"source-ref":"s3://ppe-labelling/cls/img3.jpg","ppe-compliance":1,"ppe-compliance-metadata":{"confidence":0.94,'
    '"job-name":"labeling-job/ppe-compliance","class-name":"non_compliant","human-annotated":"yes",'
    '"creation-date":"2026-11-20T11:00:00.000000","type":"groundtruth/image-classification"}}',
    '{"source-ref":"s3://ppe-labelling/cls/img4.jpg","ppe-compliance":0,"ppe-compliance-metadata":{"confidence":0.9,'
    '"job-name":"labeling-job/ppe-compliance","class-name":"compliant","human-annotated":"yes",'
    '"creation-date":"2026-11-20T11:00:05.000000","type":"groundtruth/image-classification"}}',
]

COMPLIANCE_RECHECK = [
    '{"source-ref":"s3://ppe-labelling/cls/img4.jpg","ppe-compliance-recheck":1,"ppe-compliance-recheck-metadata":'
    '{"confidence":0.97,"job-name":"labeling-job/ppe-compliance-recheck","class-name":"compliant","class-map":'
    '{"0":"non_compliant","1":"compliant"},"human-annotated":"yes","creation-date":"2026-11-22T09:30:00.000000",'
    '"type":"groundtruth/image-classification"}}',
    '{"source-ref":"s3://ppe-labelling/cls/img3.jpg","ppe-compliance-recheck":0,"ppe-compliance-recheck-metadata":'
    '{"confidence":0.88,"job-name":"labeling-job/ppe-compliance-recheck","class-name":"non_compliant","class-map":'
    '{"0":"non_compliant","1":"compliant"},"human-annotated":"yes","creation-date":"2026-11-22T09:30:07.000000",'
    '"type":"groundtruth/image-classification"}}',
]


def write_manifest(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(folder: Path) -> Path:
    """Grey JPEGs with the sizes the manifests declare (img5 is missing on purpose: its task failed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, (width, height)) in enumerate(SIZES.items()):
        pixels = np.full((height, width, 3), 60 + 40 * index, dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), pixels)
    return folder
