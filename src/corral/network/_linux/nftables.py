"""libnftables (Debian `libnftables1`) through ctypes: run nft command text in-process.

A context talks to the kernel of the network namespace of the thread that uses it (its
netlink socket is opened in that thread's namespace), so the gateway creates and uses it
only on its own thread, which lives in the gateway's namespace. One command text is one
atomic transaction: on any error nothing of it is applied.
"""

from __future__ import annotations

import ctypes

__all__ = ["Nftables", "NftablesError"]

_NFT_CTX_DEFAULT = 0


class NftablesError(Exception):
    """libnftables refused a command; the message is nft's own error output."""


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


class Nftables:
    """One libnftables context; use it from one thread only."""

    def __init__(self) -> None:
        try:
            self._lib = _load()
        except OSError as exc:
            raise NftablesError(
                f"libnftables is unavailable ({exc}); install the Debian package libnftables1"
            ) from exc
        self._ctx = self._lib.nft_ctx_new(_NFT_CTX_DEFAULT)
        if not self._ctx:
            raise NftablesError("nft_ctx_new failed")
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)

    def run(self, commands: str) -> str:
        """Run `commands` (nft syntax, one transaction); returns nft's output."""
        if self._ctx is None:
            raise NftablesError("the nftables context is closed")
        status = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
        if status != 0:
            error = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
            raise NftablesError(error.decode(errors="replace").strip() or f"status {status}")
        output: bytes = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
        return output.decode(errors="replace")

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None
