"""A test camera: serves an HTTP MJPEG stream (multipart/x-mixed-replace) of the JPEGs in a folder.

    python mjpeg_server.py PORT IMAGE_DIR [FPS]
Each frame carries a visible counter so consecutive frames differ.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "ppeframe"


def load_frames(directory: Path) -> list:
    frames = []
    for path in sorted(directory.glob("*.jpg"))[:5]:
        image = cv2.imread(str(path))
        frames.append(cv2.resize(image, (640, 360)))
    return frames


class Handler(BaseHTTPRequestHandler):
    frames: list = []
    fps: float = 10.0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.end_headers()
        index = 0
        try:
            while True:
                frame = self.frames[(index // 10) % len(self.frames)].copy()
                cv2.putText(frame, str(index), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 255), 4)
                ok, jpeg = cv2.imencode(".jpg", frame)
                data = jpeg.tobytes()
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data + b"\r\n"
                )
                self.wfile.flush()
                index += 1
                time.sleep(1 / self.fps)
        except (BrokenPipeError, ConnectionResetError):
            return


def main() -> None:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    Handler.frames = load_frames(directory)
    Handler.fps = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
