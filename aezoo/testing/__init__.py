"""The conformance kit: checks every architecture must pass, for plugin authors' own test suites.

After scikit-learn's ``check_estimator``: each check is a plain function taking an architecture
name (and optionally hyperparameters) that raises ``AssertionError`` with a reason when the
architecture breaks the model contract. Which checks a model gets follows from what it declares
(:mod:`aezoo.testing.capabilities`): every model gets the contract's checks, a model with a prior
its sampling check, a ``LikelihoodModel`` its likelihood check, and so on. In a plugin's tests::

    from aezoo.testing import parametrize_with_checks

    @parametrize_with_checks(["my-arch"])
    def test_my_arch_conforms(architecture, check):
        check(architecture)

gives one pytest test per check that applies (``-k "my-arch and export"`` selects one). Checks use
``Architecture.smoke_hparams`` unless given ``hparams``, and need no dataset: inputs come from
``AutoEncoder.example_batch``. A check the model cannot pass yet is declared with its reason, in
the model (``conformance_xfail = {"check_batch_invariance": "why"}``) or in the test
(``parametrize_with_checks([...], xfail={...})``), and reported as an expected failure.
``aezoo check NAME`` runs the same checks from the command line.
"""

from __future__ import annotations

from aezoo.testing.capabilities import (
    AUTOREGRESSIVE,
    FILES,
    IMAGE_DATA,
    INTEGER_CODES,
    LIKELIHOOD,
    MELODY_DATA,
    PRIOR,
    UPSCALER,
    Check,
    capabilities,
    required_by,
)
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
    PARITY_BATCHES,
    check_manifest_complete,
    check_manifest_follows_schema,
    check_onnx_export_parity,
)
from aezoo.testing.kit import (
    CHECK_NAMES,
    CHECKS,
    CheckResult,
    Profile,
    check_architecture,
    checks_for,
    expected_failures,
    parametrize_with_checks,
    profile,
    run_checks,
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

__all__ = [
    "AUTOREGRESSIVE",
    "CHECKS",
    "CHECK_NAMES",
    "FILES",
    "IMAGE_DATA",
    "INTEGER_CODES",
    "LIKELIHOOD",
    "MELODY_DATA",
    "PARITY_BATCHES",
    "PRIOR",
    "UPSCALER",
    "Check",
    "CheckResult",
    "Profile",
    "capabilities",
    "check_architecture",
    "check_batch_invariance",
    "check_builds_with_defaults",
    "check_decisions_match_outputs",
    "check_decode_encode_matches_forward",
    "check_deterministic_under_a_seed",
    "check_few_steps_lower_the_loss",
    "check_files_round_trip",
    "check_foreign_batch_is_a_clear_error",
    "check_hparam_validation_rejects_bad_values",
    "check_image_decoding_matches_outputs",
    "check_integer_codes",
    "check_log_likelihood",
    "check_loss_finite_and_gradients_flow",
    "check_manifest_complete",
    "check_manifest_follows_schema",
    "check_melody_decoding_matches_outputs",
    "check_onnx_export_parity",
    "check_output_matches_targets",
    "check_sample_shapes_and_range",
    "check_save_load_round_trip",
    "check_shapes",
    "check_upscales_by_a_whole_factor",
    "checks_for",
    "expected_failures",
    "parametrize_with_checks",
    "profile",
    "required_by",
    "run_checks",
]
