"""Camera agent: turns RTSP / HTTP MJPEG streams, video files and V4L2 devices into frames for ingest."""
