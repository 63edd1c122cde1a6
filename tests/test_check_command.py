"""``aezoo check NAME``: the conformance kit from the command line, one line per check."""

from __future__ import annotations


def _batch_statistics(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    encode = DenseAutoEncoder.encode
    monkeypatch.setattr(DenseAutoEncoder, "encode", lambda self, x: encode(self, x - x.mean(0, keepdim=True)))


def test_check_prints_one_line_per_check_and_exits_0(cli):
    code, out, err = cli("check", "vae", "-k", "sample", "-k", "batch_invariance")
    assert code == 0, err
    assert out.splitlines() == [
        "vae: capabilities: files, image-data, likelihood, prior",
        "PASS   check_batch_invariance",
        "PASS   check_sample_shapes_and_range",
        "2 passed",
    ]


def test_a_failing_check_is_one_line_with_its_assertion_and_exit_1(cli, monkeypatch):
    _batch_statistics(monkeypatch)
    code, out, _ = cli("check", "dense", "-k", "batch_invariance", "-k", "check_shapes")
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == "PASS   check_shapes"
    assert lines[2].startswith("FAIL   check_batch_invariance: encode() output 0, row 0 differs by ")
    assert lines[2].endswith("between a batch of 5 and a batch of 1 (eval mode; batch statistics?)")
    assert lines[3] == "1 passed, 1 failed"


def test_a_declared_expected_failure_prints_its_reason(cli, monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    _batch_statistics(monkeypatch)
    monkeypatch.setattr(
        DenseAutoEncoder, "conformance_xfail", {"check_batch_invariance": "centres each batch"}
    )
    code, out, _ = cli("check", "dense", "-k", "batch_invariance")
    assert code == 0
    assert out.splitlines()[1].startswith(
        "XFAIL  check_batch_invariance: centres each batch (encode() output 0"
    )
    assert out.splitlines()[2] == "1 failed as expected"


def test_hyperparameters_go_over_the_smoke_ones(cli, monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    seen = []
    original = DenseAutoEncoder.__init__

    def recording(self, hp):
        seen.append((hp.hidden, hp.latent_dim))
        original(self, hp)

    monkeypatch.setattr(DenseAutoEncoder, "__init__", recording)
    code, _, err = cli("check", "dense", "--set", "latent_dim=3", "-k", "check_shapes")
    assert code == 0, err
    assert set(seen) == {((64,), 3)}  # smoke hidden layers, the latent size given


def test_user_mistakes_are_one_line_and_exit_2(cli):
    code, out, err = cli("check", "dnse")
    assert (code, out, err) == (2, "", "aezoo: error: no architecture 'dnse'; did you mean 'dense'?\n")
    code, out, err = cli("check", "dense", "--set", "latent_dim=0")
    assert (
        code == 2 and not out and err.startswith("aezoo: error: dense: hyperparameter 'latent_dim' must be")
    )
    code, out, err = cli("check", "dense", "-k", "nothing")
    assert (code, out, err) == (2, "", "aezoo: error: no check of dense has 'nothing' in its name\n")
