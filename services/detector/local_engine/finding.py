"""Finding persons and their parts in one image: the person boxes, a second look at small heads, faces, and
which parts each person holds (detected ones first, the pose's where no detector found that part).
"""

from __future__ import annotations

import numpy as np

from services.detector.local_engine.assign import Found, Holder, head_fit, head_from_face
from services.detector.local_engine.bodyparts import PartBox, body_parts, pose_head_box
from services.detector.local_engine.loaded import LoadedModels
from services.detector.local_engine.parts import PartBoxes, merge_parts
from services.detector.local_engine.parts import calibrate as calibrate_part
from services.detector.local_engine.persons import PersonBoxes
from services.detector.local_engine.results import PersonResult, person_confidence
from shared.boxes import Box, containment, iou
from shared.rekognition import MIN_RETURNED_CONFIDENCE, BodyPartName

POSE_ONLY_HEAD_MAX = 0.45  # the same for a HEAD only the pose placed (the head detector saw none)
POSE_ONLY_FACE_MAX = 0.75  # confidence cap (0..1) of a FACE that only the pose placed (the face detector saw none)


WRIST_MARGIN = 0.1  # share of a person box's side around it where the pose may put a wrist (`_pose_needed`)


class PartFinding(LoadedModels):
    """The stages of `LocalPipeline.analyse` that find persons and parts (each reads the loaded models)."""

    def _one_person_per_head(self, persons: list[PersonResult]) -> list[PersonResult]:
        """Drop a person whose pose puts its head on a more confident person's head (a partial duplicate box).

        The loose NMS that keeps workers standing close also keeps boxes of one worker's upper body; two
        persons sharing one head would report one violation twice.
        """
        kept: list[PersonResult] = []
        kept_heads: list[np.ndarray] = []
        for person in sorted(persons, key=lambda p: -p.score):
            head = pose_head_box(person.keypoints, person.box)
            if any(
                iou(head, other_head) > self.settings.same_head_iou
                and containment(person.box, other.box) > self.settings.same_person_containment
                for other, other_head in zip(kept, kept_heads, strict=True)
            ):
                continue
            kept.append(person)
            kept_heads.append(head)
        return kept

    @property
    def _pose_on_demand(self) -> bool:
        """Whether MoveNet runs only where needed (`EngineSettings.pose_when_needed`): only with both part and
        face detectors loaded and no pose-placed FACE, since otherwise the pose places parts the response returns."""
        s = self.settings
        return s.pose_when_needed and not self._pose_faces and self._parts is not None

    @property
    def _pose_faces(self) -> bool:
        """Whether a FACE may come from the pose where the face detector found none (`EngineSettings.pose_faces`)."""
        return self._faces is None or self.settings.pose_faces

    def _pose_needed(self, boxes: list[np.ndarray], hands: Found, lone_hands: np.ndarray) -> list[bool]:
        """Which person boxes get a pose: one nearly inside another (or holding one), for
        `_one_person_per_head`; one with a hand that could be returned (attached confidence >= 50, or one that
        may make a person of its own: `lone_hands`) where the box alone cannot say whose it is: within reach of
        this box's possible wrists and of another's, or outside this box's own hand area (`assign._hand_fit`).
        Elsewhere the box fit places the hands (the side then from their place, `assign._side`; a weak hand a
        wrist would have taken may leave a slot to another, so a close-up's hands can differ from v2.2's), a
        pose-placed HEAD stays under 50 either way, and a torso gets its pose later (`detect_with_torsos`)."""
        if not self._pose_on_demand:
            return [True] * len(boxes)
        limit = self.settings.same_person_containment
        confident = np.array(
            [self._curve("hand_attached", float(v), 100.0 * float(v)) >= MIN_RETURNED_CONFIDENCE for v in hands.scores],
            bool,
        ).reshape(-1) | lone_hands
        shown = hands.boxes[confident].reshape(-1, 4)
        cx, cy = (shown[:, 0] + shown[:, 2]) / 2.0, (shown[:, 1] + shown[:, 3]) / 2.0
        sides = np.sqrt(np.maximum(np.prod(shown[:, 2:] - shown[:, :2], axis=1), 1.0))
        reachable, own = [], []
        for box in boxes:
            x1, y1, x2, y2 = (float(v) for v in box)
            # A wrist the pose places lies in (or just around) the person box; `assign` takes a hand up to 1.5 of
            # its side from a wrist.
            w, h = x2 - x1, y2 - y1
            rx, ry = 1.5 * sides + WRIST_MARGIN * w, 1.5 * sides + WRIST_MARGIN * h
            in_box = (x1 - 0.3 * w <= cx) & (cx <= x2 + 0.3 * w) & (y1 <= cy) & (cy <= y2 + 0.1 * h)
            near = (cx >= x1 - rx) & (cx <= x2 + rx) & (cy >= y1 - ry) & (cy <= y2 + ry)
            reachable.append(near | in_box)
            own.append(in_box)
        claims = np.sum(reachable, axis=0) if boxes else np.zeros(len(shown), int)
        return [
            any(j != i and containment(box, other) > limit for j, other in enumerate(boxes))
            or bool((reachable[i] & ((claims > 1) | ~own[i])).any())
            for i, box in enumerate(boxes)
        ]

    def _find_persons(self, image_bgr: np.ndarray) -> tuple[PersonBoxes, PartBoxes]:
        """Person boxes, and every HEAD / HAND box down to `part_attach_score` when the part detector is loaded."""
        s = self.settings
        candidates = max(s.max_persons, s.person_candidates)
        if self._parts is None:
            found = self._persons.detect(
                image_bgr, min_score=s.person_min_score, iou=s.person_nms_iou, max_persons=candidates
            )
            return found, PartBoxes.empty()
        return self._parts.detect_with_persons(
            image_bgr,
            person_min_score=s.person_min_score,
            person_iou=s.person_nms_iou,
            max_persons=candidates,
            min_score=s.part_attach_score,
        )

    def _zoom_small_heads(self, image_bgr: np.ndarray, parts: PartBoxes) -> PartBoxes:
        """The parts, with those of a second look at tiles holding small heads seen only weakly (see EngineSettings)."""
        s = self.settings
        if self._parts is None or s.zoom_tiles <= 0 or not len(parts):
            return parts
        height, width = image_bgr.shape[:2]
        scale = min(s.input_side / max(height, width), max(s.enlarge_to / max(height, width), 1.0))
        heads = parts.of("HEAD")
        sides = np.sqrt(np.prod(np.maximum(heads.boxes[:, 2:] - heads.boxes[:, :2], 1.0), axis=1)) * scale
        weak = (heads.confidence < MIN_RETURNED_CONFIDENCE) & (sides < s.zoom_head_side)
        if not weak.any():
            return parts
        tw, th = round(s.zoom_tile * width), round(s.zoom_tile * height)
        tiles = [(x, y, x + tw, y + th) for y in (0, height - th) for x in (0, width - tw)]
        centres = np.array([((t[0] + t[2]) / 2.0, (t[1] + t[3]) / 2.0) for t in tiles])
        counts = np.zeros(len(tiles), int)
        for box in heads.boxes[weak]:  # each weak head to the tile whose centre is nearest
            counts[int(np.argmin(np.hypot(*(centres - np.asarray(Box.of(box).centre)).T)))] += 1
        for k in np.argsort(-counts, kind="stable")[: s.zoom_tiles]:
            if counts[k]:
                zoomed = self._parts.detect_in(image_bgr, tiles[k], min_score=s.part_attach_score)
                parts = merge_parts(parts, zoomed)
        return parts

    def _may_hold_parts(self, box: np.ndarray, score: float, heads: Found, hands: Found, faces: Found) -> bool:
        """False for a person box that `_drop_head_duplicates` would drop as part-less whatever the assignment:
        under `partless_min_confidence`, with no head, hand or face near it that could reach a returnable
        confidence there. Such a box gets no pose (MoveNet is the largest cost per person)."""
        s = self.settings
        if self._parts is None or s.partless_min_confidence <= 0:
            return True
        if self._curve("person", score, person_confidence(score)) >= s.partless_min_confidence:
            return True
        returnable = MIN_RETURNED_CONFIDENCE
        if any(
            head_fit(head, box) is not None and self._curve("head_attached", float(v), 100.0 * float(v)) >= returnable
            for head, v in zip(heads.boxes, heads.scores, strict=True)
        ):
            return True
        if any(
            head_fit(face, box) is not None and 100.0 * float(v) >= returnable
            for face, v in zip(faces.boxes, faces.scores, strict=True)
        ):
            return True
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = x2 - x1, y2 - y1
        return any(
            x1 - 0.5 * w <= (hand[0] + hand[2]) / 2 <= x2 + 0.5 * w
            and y1 - 0.1 * h <= (hand[1] + hand[3]) / 2 <= y2 + 0.2 * h
            and self._curve("hand_attached", float(v), 100.0 * float(v)) >= returnable
            for hand, v in zip(hands.boxes, hands.scores, strict=True)
        )

    def _is_scene(self, person_scores: np.ndarray) -> bool:
        """Whether the person detector found someone confidently (`EngineSettings.scene_person_confidence`)."""
        threshold = self.settings.scene_person_confidence
        return threshold > 0 and any(
            self._curve("person", float(v), person_confidence(float(v))) >= threshold for v in person_scores
        )

    @staticmethod
    def _found(parts: PartBoxes, kind: str) -> tuple[Found, np.ndarray]:
        """Raw-score boxes of one part kind, and which of them may make a person of their own (the part head's
        calibrated confidence >= 50: a weak box is only trusted where a person box expects that part)."""
        of = parts.of(kind)
        return Found(of.boxes, of.scores, of.covered), of.confidence >= MIN_RETURNED_CONFIDENCE

    def _part_confidence(self, kind: str, part: PartBox, attached: bool) -> PartBox:
        """A detected part's score as a calibrated 0..1 confidence: by the curve fitted for attached or for lone
        parts (model_workshop.calibrate); the part head's own curve where the file has none."""
        raw = part.score
        if not self.settings.calibrated or self._parts is None:
            return part  # raw scores (what model_workshop.calibrate fits its curves on)
        lone = float(calibrate_part(kind, np.array([raw], np.float32), self._parts.calibration)[0])
        confidence = self._curve(f"{kind.lower()}_{'attached' if attached else 'lone'}", raw, lone)
        return PartBox(part.name, part.box, confidence / 100.0, part.covered)

    def _face_canvases(self, image_shape: tuple[int, ...], found: PersonBoxes, parts: PartBoxes) -> tuple[float, ...]:
        """The face detector's canvases worth running, from the sizes of the persons and heads already found.

        BlazeFace sees faces from about 1/16 of its square input: the letterbox run cannot find a face in a frame
        whose heads are all under 1/20 of its long side (a CCTV view), and the close-up run (faces of at least
        0.2 of the long side) is only needed when a head or a person fills much of the frame. With no person and
        no head at all, both run (a tight face crop gives NanoDet nothing)."""
        if self._faces is None:
            return ()
        height, width = image_shape[:2]
        long_side = float(max(height, width))
        heads = parts.of("HEAD")
        head_side = float((heads.boxes[:, 2:] - heads.boxes[:, :2]).max()) if len(heads) else 0.0
        person_h = float((found.boxes[:, 3] - found.boxes[:, 1]).max()) if len(found.boxes) else 0.0
        if not head_side and not person_h:
            return self._faces.canvases
        wanted = []
        for canvas in self._faces.canvases:
            close_up = canvas > 1.0
            if (close_up and (head_side >= 0.15 * long_side or person_h >= 0.6 * height)) or (
                not close_up and (head_side >= long_side / 20 or person_h >= height / 3)
            ):
                wanted.append(canvas)
        return tuple(wanted)

    def _find_faces(self, image_bgr: np.ndarray, canvases: tuple[float, ...]) -> Found:
        if self._faces is None or not canvases:
            return Found.empty()
        faces = self._faces.detect(image_bgr, canvases)
        scores = np.array(
            [
                self._curve("face", float(v), float(c)) / 100.0
                for v, c in zip(faces.scores, faces.confidences, strict=True)
            ],
            np.float32,
        )
        return Found(faces.boxes, scores.reshape(-1))

    def _drop_head_duplicates(
        self, persons: list[PersonResult], holders: list[Holder]
    ) -> tuple[list[PersonResult], list[Holder], list[np.ndarray]]:
        """A person box the part detector gave no head, whose pose puts its head on a head another person got,
        is that person's partial duplicate when it lies inside that person's box: dropped (else it keeps no pose
        HEAD, see `_parts_of`). Returns the kept persons and holders, and the detected heads' boxes."""
        owners = [(np.asarray(h.head.box), h.box) for h in holders if h.head is not None and h.head.score >= 0.5]
        kept: list[tuple[PersonResult, Holder]] = []
        for person, holder in zip(persons, holders, strict=True):
            detected = [p.score for p in (holder.head, holder.face, *holder.hands) if p is not None]
            partless = not holder.from_parts and max(detected, default=0.0) < MIN_RETURNED_CONFIDENCE / 100.0
            if (
                partless
                and self._parts is not None
                and self._curve("person", person.score, person_confidence(person.score))
                < self.settings.partless_min_confidence
            ):
                continue
            own_face = holder.face is not None and holder.face.score >= MIN_RETURNED_CONFIDENCE / 100.0
            headless = holder.head is None or holder.head.score < 0.5
            if self._parts is not None and not holder.from_parts and not own_face and headless:
                # A box with no head of its own that holds, where its head would be, the head another box was
                # given, and overlaps that box: a second box on the same person (close-ups give several). Not a
                # box with a face of its own: that face was not in the other box's head (it would have gone there),
                # so the head is someone else's or a false one (2 masked close-ups lost their FACE so in v2.1).
                if any(
                    head_fit(owner_head, person.box) is not None
                    and (iou(person.box, owner_box) > 0.4 or containment(person.box, owner_box) > 0.7)
                    for owner_head, owner_box in owners
                ):
                    continue
            kept.append((person, holder))
        return [p for p, _ in kept], [h for _, h in kept], [head for head, _ in owners]

    def _parts_of(
        self, person: PersonResult, holder: Holder, taken_heads: list[np.ndarray]
    ) -> list[tuple[PartBox, str]]:
        """A person's parts and where each came from: detected ones first; the pose's where no detector found
        that part (a face too small for the face detector, a head the part detector missed), unless that
        pose head lies on a head another person was given."""
        pose = {part.name: part for part in body_parts(person.keypoints, person.box)} if not holder.from_parts else {}
        parts: list[tuple[PartBox, str]] = []
        if holder.face is not None:
            parts.append((holder.face, "detector"))
        elif BodyPartName.FACE in pose and self._pose_faces:
            fallback = pose[BodyPartName.FACE]
            # The face detector looked and found no face here: a pose-only face stays under 80 (it is returned,
            # but decides nothing at the camera default MinConfidence); see docs/local-engine.md "Faces".
            score = min(fallback.score, POSE_ONLY_FACE_MAX) if self._faces else fallback.score
            parts.append((PartBox(BodyPartName.FACE, fallback.box, score), "pose"))
        if holder.head is not None:
            parts.append((holder.head, "lone" if holder.from_parts and holder.head_detected else "detector"))
        elif holder.face is not None:  # the face detector saw the face of a head the part head missed
            parts.append((PartBox(BodyPartName.HEAD, head_from_face(holder.face.box), holder.face.score), "face"))
        elif BodyPartName.HEAD in pose and not any(
            iou(np.asarray(pose[BodyPartName.HEAD].box), taken) > self.settings.same_head_iou
            for taken in taken_heads
        ):
            fallback = pose[BodyPartName.HEAD]
            # The head detector looked there and found nothing: on the TRAIN side's validation slice 2 of 48
            # such pose heads lay on a labelled head, so they stay under 50 (not returned).
            score = min(fallback.score, POSE_ONLY_HEAD_MAX) if self._parts else fallback.score
            parts.append((PartBox(BodyPartName.HEAD, fallback.box, score), "pose"))
        if holder.hands or self._parts is not None:
            parts += [(hand, "lone" if holder.from_parts else "detector") for hand in holder.hands]
        else:
            parts += [(pose[n], "pose") for n in (BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND) if n in pose]
        return parts
