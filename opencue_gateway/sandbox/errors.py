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
in the server.  The texts of statuses and of refusals that several modules
share live in this module; a refusal only one module makes (a job spec's
naming rules, a group moved under itself) is worded where it is raised.
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


def short_name(kind: str) -> SpecBuilderError:
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


class EntityError(JavaError):
    """Cuebot refused to create, change or remove an entity (``Entity*Error``)."""

    java_class = "com.imageworks.spcue.EntityModificationError"


class EntityRemovalError(EntityError):
    """Cuebot refused to remove an entity that others still use."""

    java_class = "com.imageworks.spcue.EntityRemovalError"


class DependError(JavaError):
    """A dependency Cuebot will not create (``com.imageworks.spcue.depend.DependException``)."""

    java_class = "com.imageworks.spcue.depend.DependException"


def depend_on_complete_job() -> DependError:
    """DependManagerService refuses to make anything wait for a finished job."""
    return DependError("The job you are depending on is already complete.")


def group_not_removed() -> CuebotError:
    """ManageGroup.delete answers any failure with this text."""
    return CuebotError(
        grpc.StatusCode.INTERNAL,
        "Failed to remove group, be sure that there are no jobs or filter actions pointing "
        "at the group.",
    )


def group_has_children(name: str, what: str) -> EntityRemovalError:
    """GroupDao refuses to delete a group with sub groups or jobs (``what`` names which)."""
    return EntityRemovalError(f"failed to delete group {name}, still has sub {what}")


def subscription_not_found(name: str) -> CuebotError:
    """ManageSubscription.find's wording for an unknown ``alloc.show`` name."""
    return CuebotError(grpc.StatusCode.NOT_FOUND, f"A subscription to {name} was not found.")


class CueGrpcError(JavaError):
    """A checked exception a servant throws (``com.imageworks.spcue.CueGrpcException``)."""

    java_class = "com.imageworks.spcue.CueGrpcException"


def bad_subscription_name() -> CueGrpcError:
    """ManageSubscription.find with a name that is not ``facility.alloc.show``."""
    return CueGrpcError("Subscription names must be in the form of alloc.show")


def launch_failed(reason: str, queued: bool) -> CuebotError:
    """ManageJob's answer when a job spec cannot be launched (or queued, for LaunchSpec)."""
    what = "add job to launch queue" if queued else "launch and add job"
    return CuebotError(grpc.StatusCode.INTERNAL, f"Failed to {what}: {reason}")


def bad_start_after(value: int) -> CuebotError:
    """ManageLayer.setStartAfter refuses a time that is negative or years ahead."""
    return CuebotError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "start_after must be a Unix timestamp in seconds no more than 5 years in the future, "
        f"or 0 to clear the gate; got {value}. Was a milliseconds value passed where seconds "
        "are expected?",
    )


def no_suitable_frames() -> CuebotError:
    """Local booking (Add*RenderPartition) found no host resources to set aside."""
    return CuebotError(grpc.StatusCode.INTERNAL, "Failed to find suitable frames.")


def alloc_has_hosts() -> EntityRemovalError:
    """AllocationDao refuses to delete an allocation with hosts."""
    return EntityRemovalError("allocation still contains hosts")


def alloc_is_default() -> EntityRemovalError:
    """AllocationDao refuses to delete the default allocation."""
    return EntityRemovalError("you cannot delete the default allocation")


def facility_has_allocations() -> EntityRemovalError:
    """A facility's allocations keep it (Cuebot's foreign key refuses the delete)."""
    return EntityRemovalError("facility still contains allocations")


def host_has_procs() -> EntityError:
    """HostManagerService refuses to move a busy host to another allocation."""
    return EntityError("You cannot move hosts with running procs between allocations.")


def subscription_has_procs() -> EntityError:
    """SubscriptionDao refuses to delete a subscription its show is running on."""
    return EntityError("You cannot delete a subscription with running procs")


def unbook_needs_count() -> JavaError:
    """ManageProc.unbookTo* without ``max_results``."""
    return JavaError(
        "You must specify the number of procs to unbook within the ProcSearchCriteria."
    )


def bad_action_id(action_id: str) -> SpcueRuntimeError:
    """ManageAction.commit with an id that names no action."""
    return SpcueRuntimeError(f"Invalid actionId on Action commit: {action_id}")


def duplicate(kind: str, name: str) -> SpcueRuntimeError:
    """A second entity of a kind with a taken name, which Cuebot's unique indexes refuse."""
    return SpcueRuntimeError(f"A {kind} named {name} already exists.")
