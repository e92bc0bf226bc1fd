"""The CDN: files behind Discord-style signed URLs (``ex``/``is``/``hm``), ephemeral attachments
(command-option and modal uploads, under ``/ephemeral-attachments/…``) that the emulator can purge,
and a placeholder PNG for avatars and icons."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from .parts import Parts
from .protocol import image_size, placeholder_png

URL_LIFETIME = 86400
_PATH = re.compile(r"(attachments|ephemeral-attachments)/(\d+)/(\d+)/([^/]+)")


class Cdn(Parts):
    """Mixin: the CDN of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_cdn(self, secret: bytes) -> None:
        self._cdn_secret = secret
        self.cdn_hits: list[str] = []
        self._attachments: dict[int, dict] = {}
        self._broken: dict[int, int] = {}

    # ------------------------------------------------------------------ test-facing

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        width: int | None = None,
        height: int | None = None,
        expires_in: float = URL_LIFETIME,
    ) -> dict:
        """Puts ``data`` on the CDN as a member's upload to a command option or modal: an ephemeral
        attachment (``/ephemeral-attachments/…``) that :meth:`purge_ephemeral` removes.  Its signed
        URL stops working ``expires_in`` seconds from now (emulator time).  Width/height are read
        from the image when not given.  Passed to :meth:`add_message`, it becomes a channel file."""
        return self._register_file(
            data, filename, content_type, None, width=width, height=height, expires_in=expires_in
        )

    def purge_ephemeral(self) -> int:
        """Deletes every ephemeral attachment (Discord purges them after a while); returns how many.
        Their URLs then answer 404 and cannot be refreshed."""
        gone = [aid for aid, stored in self._attachments.items() if stored["channel_id"] is None]
        for attachment_id in gone:
            del self._attachments[attachment_id]
        return len(gone)

    def break_attachment(self, attachment_id: int | str, status: int = 404) -> None:
        """From now on the CDN answers ``status`` for this attachment."""
        self._broken[int(attachment_id)] = status

    # ------------------------------------------------------------------ internals

    def _file_path(self, stored: dict) -> str:
        if stored["channel_id"] is None:
            return f"ephemeral-attachments/{self.application_id}/{stored['id']}/{stored['filename']}"
        return f"attachments/{stored['channel_id']}/{stored['id']}/{stored['filename']}"

    def _signed_url(self, stored: dict, *, expires_in: float = URL_LIFETIME) -> str:
        issued, expires = int(self.now()), int(self.now() + expires_in)
        path = self._file_path(stored)
        ex, issued_hex = f"{expires:x}", f"{issued:x}"
        return f"{self.cdn_base}/{quote(path)}?ex={ex}&is={issued_hex}&hm={self._signature(path, ex, issued_hex)}&"

    def _signature(self, path: str, ex: str, issued: str) -> str:
        return hmac.new(self._cdn_secret, f"{path}|{ex}|{issued}".encode(), hashlib.sha256).hexdigest()

    def _register_file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        channel_id: int | None,
        *,
        width: int | None = None,
        height: int | None = None,
        expires_in: float = URL_LIFETIME,
        description: str | None = None,
    ) -> dict:
        """Stores a file (``channel_id`` None: ephemeral) and returns its attachment object."""
        attachment_id = self._snowflake()
        stored = {
            "id": attachment_id,
            "channel_id": channel_id,
            "filename": filename,
            "data": data,
            "content_type": content_type,
        }
        self._attachments[attachment_id] = stored
        url = self._signed_url(stored, expires_in=expires_in)
        if width is None and height is None:
            size = image_size(data)
            if size is not None:
                width, height = size
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "width": width,
            "height": height,
        }
        if channel_id is None:
            attachment["ephemeral"] = True
        if description is not None:
            attachment["description"] = description
        return attachment

    def _rehome(self, attachment: dict, channel_id: int) -> dict:
        """A member's message keeps the file as a channel attachment (no longer ephemeral)."""
        stored = self._attachments.get(int(attachment["id"]))
        if stored is None or stored["channel_id"] is not None:
            return attachment
        stored["channel_id"] = channel_id
        url = self._signed_url(stored)
        return {k: v for k, v in attachment.items() if k != "ephemeral"} | {"url": url, "proxy_url": url}

    def _delete_files(self, attachments: list[dict]) -> None:
        for attachment in attachments:
            self._attachments.pop(int(attachment["id"]), None)

    def _refreshed(self, url: str) -> str:
        """``POST /attachments/refresh-urls`` for one URL: a new signature while the file exists.
        For a purged or deleted file the entry repeats the original URL (still dead): Discord signs
        only files it still has, and a client cannot tell "gone" from "not refreshed" otherwise."""
        match = _PATH.search(urlsplit(url).path)
        stored = self._attachments.get(int(match.group(3))) if match else None
        if stored is None or match is None or self._file_path(stored) != match.group(0):
            return url
        return self._signed_url(stored)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        self.cdn_hits.append(request.path)
        tail = request.match_info["tail"]
        if not tail.startswith(("attachments/", "ephemeral-attachments/")):
            return web.Response(body=placeholder_png(), content_type="image/png")
        match = _PATH.fullmatch(tail)
        if match is None:
            return web.Response(status=404, text="Not Found")
        attachment_id = int(match.group(3))
        if attachment_id in self._broken:
            return web.Response(status=self._broken[attachment_id], text="CDN error")
        stored = self._attachments.get(attachment_id)
        if stored is None or self._file_path(stored) != tail:
            return web.Response(status=404, text="Not Found")
        ex, issued, signature = (request.query.get(key, "") for key in ("ex", "is", "hm"))
        try:
            expired = int(ex, 16) < self.now()
        except ValueError:
            expired = True
        if expired or not hmac.compare_digest(signature, self._signature(tail, ex, issued)):
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=stored["data"], content_type=stored["content_type"] or "application/octet-stream")
