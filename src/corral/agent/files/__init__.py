"""`/files`: file download and upload, streamed, with signed links (protocol doc §7.2-7.5).

Code map: `endpoint` (method, access, user, dispatch) → `access` (token or signature,
expiry) and `request` (query, path resolution) → `download` (file → chunked response, flow
controlled, optional gzip) or `upload` (body → `gzip_stream` → octet-stream or `multipart`
sink → `target`, which creates each file and its parents owned by the user, with its
`metadata` xattrs). `errors` maps every failure to its HTTP status; `answers` writes them.

Every path is resolved and opened by the agent inside the sandbox (after `pivot_root`), so
`..`, `~` and symlinks can only ever name the sandbox's own files.
"""

from corral.agent.files.endpoint import FileTransfers

__all__ = ["FileTransfers"]
