"""Which checks a model gets, its expected failures, and running them: in pytest
(:func:`parametrize_with_checks`), as a function (:func:`check_architecture`) or one result at a
time (:func:`run_checks`, what ``aezoo check`` prints)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aezoo.errors import AezooError, did_you_mean
from aezoo.testing import _support
from aezoo.testing.capabilities import Check, capabilities, required_by
from aezoo.testing.capability_checks import (
    check_decisions_match_outputs,
    check_files_round_trip,
    check_image_decoding_matches_outputs,
    check_integer_codes,
    check_log_likelihood,
    check_melody_decoding_matches_outputs,
    check_sample_shapes_and_range,
    check_upscales_by_a_whole_factor,
)
from aezoo.testing.export_checks import (
    check_manifest_complete,
    check_manifest_follows_schema,
    check_onnx_export_parity,
)
from aezoo.testing.model_checks import (
    check_batch_invariance,
    check_builds_with_defaults,
    check_decode_encode_matches_forward,
    check_deterministic_under_a_seed,
    check_foreign_batch_is_a_clear_error,
    check_hparam_validation_rejects_bad_values,
    check_output_matches_targets,
    check_shapes,
)
from aezoo.testing.training_checks import (
    check_few_steps_lower_the_loss,
    check_loss_finite_and_gradients_flow,
    check_save_load_round_trip,
)

#: Every check, in the order they run; :func:`checks_for` keeps those a model's capabilities call for.
CHECKS: tuple[Check, ...] = (
    check_builds_with_defaults,
    check_shapes,
    check_output_matches_targets,
    check_foreign_batch_is_a_clear_error,
    check_decode_encode_matches_forward,
    check_batch_invariance,
    check_deterministic_under_a_seed,
    check_loss_finite_and_gradients_flow,
    check_few_steps_lower_the_loss,
    check_hparam_validation_rejects_bad_values,
    check_save_load_round_trip,
    check_sample_shapes_and_range,
    check_log_likelihood,
    check_files_round_trip,
    check_upscales_by_a_whole_factor,
    check_integer_codes,
    check_decisions_match_outputs,
    check_image_decoding_matches_outputs,
    check_melody_decoding_matches_outputs,
    check_onnx_export_parity,
    check_manifest_complete,
    check_manifest_follows_schema,
)
CHECK_NAMES = tuple(check.__name__ for check in CHECKS)


@dataclasses.dataclass(frozen=True)
class Profile:
    """What the kit learns from one built model: its capabilities and its declared expected
    failures (``AutoEncoder.conformance_xfail``)."""

    capabilities: frozenset[str]
    xfail: Mapping[str, str]


def profile(architecture: str, hparams: Mapping[str, Any] | None = None) -> Profile:
    """Build the model once and read what it declares. A model that cannot be built gets no
    capabilities: the checks every model gets then report why."""
    try:
        model = _support.build(architecture, hparams)
    except AezooError:
        raise  # an unknown name or a bad hyperparameter: the caller's mistake, in one line
    except Exception:
        return Profile(frozenset(), {})
    xfail = dict(getattr(model, "conformance_xfail", None) or {})
    try:
        found = capabilities(model)
    except Exception:  # a broken export_parts() or example_batch(): the contract's checks say so
        found = frozenset()
    return Profile(found, xfail)


def checks_for(architecture: str, hparams: Mapping[str, Any] | None = None) -> tuple[Check, ...]:
    """The checks that apply to ``architecture``: those of every model, and those its capabilities
    call for."""
    return select(profile(architecture, hparams))


def expected_failures(
    architecture: str, hparams: Mapping[str, Any] | None = None, xfail: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Check name → reason: what the model declares, then ``xfail`` (which wins)."""
    return _expected(architecture, profile(architecture, hparams), xfail)


def select(found: Profile, only: Iterable[str] | None = None) -> tuple[Check, ...]:
    """The checks ``found``'s capabilities call for, in order; with ``only``, those whose name
    contains one of its texts."""
    texts = list(only or ())
    return tuple(
        check
        for check in CHECKS
        if required_by(check) <= found.capabilities and (not texts or any(t in check.__name__ for t in texts))
    )


def _expected(architecture: str, found: Profile, xfail: Mapping[str, str] | None) -> dict[str, str]:
    declared = {**found.xfail, **(xfail or {})}
    for name, reason in declared.items():
        if name not in CHECK_NAMES:
            hint = did_you_mean(name, CHECK_NAMES) or "aezoo.testing.CHECKS lists them"
            raise AezooError(f"{architecture}: an expected failure names no check {name!r}; {hint}")
        if not str(reason).strip():
            raise AezooError(f"{architecture}: the expected failure of {name} gives no reason")
    return declared


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``PASS``, ``FAIL``, ``XFAIL`` (failed as declared) or ``XPASS`` (declared
    to fail but passed: drop the declaration), with the failure's one-line message or the reason."""

    check: str
    status: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("PASS", "XFAIL")


def run_checks(
    architecture: str,
    hparams: Mapping[str, Any] | None = None,
    xfail: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> Iterator[CheckResult]:
    """Run each check that applies (with ``only``, those whose name contains one of its texts),
    yielding its result as it finishes."""
    found = profile(architecture, hparams)
    expected = _expected(architecture, found, xfail)
    for check in select(found, only):
        name = check.__name__
        try:
            check(architecture, hparams)
        except Exception as exc:
            message = one_line(exc)
            if name in expected:
                yield CheckResult(name, "XFAIL", f"{expected[name]} ({message})")
            else:
                yield CheckResult(name, "FAIL", message)
        else:
            if name in expected:
                yield CheckResult(name, "XPASS", f"declared to fail ({expected[name]}) but passed")
            else:
                yield CheckResult(name, "PASS")


def check_architecture(
    architecture: str,
    hparams: Mapping[str, Any] | None = None,
    xfail: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> None:
    """Run every check that applies to ``architecture`` (or ``only`` some, as :func:`run_checks`);
    the first unexpected failure (or an expected one that passed) raises ``AssertionError``."""
    for result in run_checks(architecture, hparams, xfail, only):
        if not result.ok:
            raise AssertionError(f"{result.check}: {result.status}: {result.message}")


def parametrize_with_checks(
    architectures: Iterable[str],
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
    xfail: Mapping[str, str] | None = None,
) -> Any:
    """A ``pytest.mark.parametrize`` over (architecture, check), one test id per pair that applies:
    ``conv-check_onnx_export_parity``. The test receives ``check`` already bound to the
    architecture's hyperparameters (``hparams[name]`` or its smoke hyperparameters). A check the
    model declares as failing (``AutoEncoder.conformance_xfail``), or named in ``xfail`` (check
    name → reason), is a strict ``pytest.mark.xfail`` with that reason."""
    import pytest

    params = []
    for name in architectures:
        chosen = (hparams or {}).get(name)
        found = profile(name, chosen)
        expected = _expected(name, found, xfail)
        for check in select(found):
            bound = functools.partial(check, hparams=chosen)
            functools.update_wrapper(bound, check)
            marks = ()
            if check.__name__ in expected:
                marks = (pytest.mark.xfail(reason=expected[check.__name__], strict=True),)
            params.append(pytest.param(name, bound, id=f"{name}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("architecture", "check"), params)


def one_line(exc: BaseException) -> str:
    """A failure as one line: the assertion's message, or the exception's type and message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, AssertionError):
        return text or "an assertion failed (no message)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
