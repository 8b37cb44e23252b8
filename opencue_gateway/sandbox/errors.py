"""How the sandbox fails, worded and coded the way Cuebot's servants fail.

Cuebot has two paths for a failed lookup, and a client sees either:

* A servant that catches Spring's ``EmptyResultDataAccessException`` answers
  ``NOT_FOUND`` with the exception's text, which for a plain ``queryForObject``
  that matched no row is Spring's ``Incorrect result size: expected 1, actual 0``
  (``ManageShow.findShow``, ``ManageJob.getJob``, ``ManageHost.findHost``, ...).
  ``ManageJob`` replaces that text with ``Job not found`` for every method that
  takes a ``Job`` message.
* A servant that does not catch it lets it reach ``CueServerInterceptor``, which
  answers ``INTERNAL`` with ``e.toString() + "\\n" + e.getMessage()`` (for example
  ``ManageFrame.retry`` with an unknown frame id, or ``ManageHost.lock`` with an
  unknown host id).  The sandbox answers those NOT_FOUND instead (see
  :func:`uncaught`).

The farm raises :class:`JavaError` subclasses, the Python stand-ins for the
Java exceptions; handlers decide, servant by servant, which of them Cuebot
catches; whatever is not caught is rendered by :func:`uncaught`, exactly once,
in the server.  Every message text the sandbox sends lives in this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

# Spring's message for queryForObject() when no row matched.
INCORRECT_RESULT_SIZE = "Incorrect result size: expected 1, actual 0"


class JavaError(Exception):
    """A Java exception Cuebot would raise; ``java_class`` is what toString() prints."""

    java_class = "java.lang.RuntimeException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyResultError(JavaError):
    """No row matched a lookup (Spring's ``EmptyResultDataAccessException``)."""

    java_class = "org.springframework.dao.EmptyResultDataAccessException"

    def __init__(self, message: str = INCORRECT_RESULT_SIZE) -> None:
        super().__init__(message)


class SpcueRuntimeError(JavaError):
    """A business rule refused the request (``com.imageworks.spcue.SpcueRuntimeException``)."""

    java_class = "com.imageworks.spcue.SpcueRuntimeException"


class SpecBuilderError(JavaError):
    """A name failed Cuebot's naming rules (``com.imageworks.spcue.SpecBuilderException``)."""

    java_class = "com.imageworks.spcue.SpecBuilderException"


class CuebotError(Exception):
    """A status a Cuebot servant chose to send: the server aborts the call with it."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def uncaught(error: JavaError) -> CuebotError:
    """Render an exception no servant caught, as ``CueServerInterceptor`` does.

    One deliberate difference: an unknown id is NOT_FOUND here even where real
    Cuebot lets the lookup failure escape as INTERNAL.  Clients (and the
    gateway's users) should see a 404 for "no such thing", and the text is
    still Cuebot's.
    """
    if isinstance(error, EmptyResultError):
        return CuebotError(grpc.StatusCode.NOT_FOUND, error.message)
    return CuebotError(
        grpc.StatusCode.INTERNAL, f"{error.java_class}: {error.message}\n{error.message}"
    )


def unimplemented(path: str) -> CuebotError:
    """Say plainly that the sandbox lacks a method, instead of gRPC's "Method not found"."""
    return CuebotError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"the sandbox Cuebot does not implement {path.lstrip('/')}",
    )


@contextlib.contextmanager
def not_found() -> Iterator[None]:
    """Report a failed lookup as ``NOT_FOUND`` with the exception's own text.

    This is what the Find*/Get*-by-id servants do.
    """
    try:
        yield
    except EmptyResultError as error:
        raise CuebotError(grpc.StatusCode.NOT_FOUND, error.message) from error


@contextlib.contextmanager
def job_not_found() -> Iterator[None]:
    """Report an unknown ``Job`` message as ManageJob does: ``NOT_FOUND``, "Job not found"."""
    try:
        yield
    except EmptyResultError as error:
        raise CuebotError(grpc.StatusCode.NOT_FOUND, "Job not found") from error


@contextlib.contextmanager
def show_not_created() -> Iterator[None]:
    """Report any CreateShow failure as ManageShow does: ``INTERNAL`` plus the reason.

    Cuebot concatenates without a space, and so does the sandbox.
    """
    try:
        yield
    except JavaError as error:
        raise CuebotError(
            grpc.StatusCode.INTERNAL, "Show could not be created." + error.message
        ) from error


def short_show_name(kind: str) -> SpecBuilderError:
    """A name under three characters, refused by Cuebot's ``conformName``."""
    return SpecBuilderError(f"The {kind.lower()} name must be at least 3 characters.")


def malformed_name(kind: str, name: str) -> SpecBuilderError:
    """A name with characters Cuebot's ``conformName`` does not accept."""
    return SpecBuilderError(
        f"The {kind.lower()} name: {name} is not in the proper format.  {kind} names must "
        "be alpha numeric, no dashes or punctuation."
    )


def duplicate_show(name: str) -> SpcueRuntimeError:
    """A second show with a taken name.

    Cuebot's schema does not stop this, but two shows with one name break every
    lookup by name afterwards, so the sandbox refuses it.
    """
    return SpcueRuntimeError(f"A show named {name} already exists.")


def not_nimby() -> SpcueRuntimeError:
    """OwnerManager refuses deeds on hosts that are not NIMBY desktops (its spelling)."""
    return SpcueRuntimeError("Cannot setup deeeds on non-NIMBY hosts.")


def stale_update_check(difference: int) -> CuebotError:
    """GetUpdatedFrames with a last_check over a minute old.

    Cuebot throws IllegalArgumentException and then never answers the call; the
    sandbox answers INVALID_ARGUMENT with the same text instead of hanging.
    """
    return CuebotError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "the last update timestamp cannot be over a minute off the current time, "
        f"difference was: {difference}",
    )
