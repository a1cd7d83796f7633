"""Whatever text a pack file holds, loading it gives a pack or StoreopsErrors, never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.engine.errors import StoreopsError
from storeops.engine.packs import load_pack

FIXTURE = (Path(__file__).parent / "data" / "stores.yaml").read_text(encoding="utf-8")
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def load_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_pack(path)
    except StoreopsError as exc:
        assert str(exc)  # every error says something, with its place when it has one
        for error in getattr(exc, "errors", [exc]):
            assert error.location is None or error.location.line >= 1


@SETTINGS
@given(st.text(max_size=400))
def test_random_text(tmp_path, text):
    load_text(tmp_path, text)


@SETTINGS
@given(st.integers(0, len(FIXTURE) - 1), st.integers(1, 40), st.text(max_size=20))
def test_damaged_fixture(tmp_path, start, length, insert):
    """A real pack with a random slice replaced: the realistic typo."""
    load_text(tmp_path, FIXTURE[:start] + insert + FIXTURE[start + length:])
