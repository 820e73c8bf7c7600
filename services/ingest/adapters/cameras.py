"""Camera lookup by API key, cached briefly in process.

The intake path must not hit PostgreSQL for every frame at 300 frames/s, so lookups (hits and misses) are
cached for `ttl_s`. A key rotated or a camera disabled through this process's admin API takes effect at
once; through another process, within `ttl_s`.
"""

import time

from services.ingest.adapters.db import CameraRepository
from services.ingest.domain import Camera, hash_api_key, key_matches


class CameraDirectory:
    def __init__(self, repository: CameraRepository, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self._repository = repository
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._cache: dict[str, tuple[Camera | None, float]] = {}

    async def by_api_key(self, api_key: str) -> Camera | None:
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[1] > now:
            camera = cached[0]
        else:
            camera = await self._repository.by_key_hash(key_hash)
            if len(self._cache) >= self._max_entries:
                self._cache.clear()  # bounded: a flood of random keys cannot grow memory
            self._cache[key_hash] = (camera, now + self._ttl_s)
        if camera is None or not key_matches(api_key, camera.key_hash):
            return None
        return camera

    def invalidate(self) -> None:
        self._cache.clear()
