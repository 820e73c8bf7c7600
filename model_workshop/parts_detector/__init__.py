"""HEAD / HAND part detector: a small detection head trained on NanoDet's frozen FPN features.

    python -m model_workshop.parts_detector.train --data ../shared/data     # train, measure, write weights
    python -m model_workshop.parts_detector.evaluate --data ../shared/data  # val / held-back figures
"""
