"""examples/audio on a small slice (10 words, 3 stored voices, one held-out voice with
noise): the join returns the exact nearest clips with their records, word accuracy stays
above the measured bound, rendering is deterministic. Skipped without espeak-ng."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from psycopg import sql

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.audio import speech

pytestmark = pytest.mark.skipif(speech.espeak() is None,
                                reason="espeak-ng is not installed (apt-get install espeak-ng)")

pytest.importorskip("librosa", reason="librosa is not installed (the examples extra)")

from examples.audio import mfcc, store  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[list[speech.Clip], list[speech.Clip], np.ndarray, np.ndarray]:
    wav = tmp_path_factory.mktemp("wav")
    setup = speech.QUICK
    stored = speech.render(setup.stored(), wav)
    queries = speech.render(setup.queries(), wav)
    rng = np.random.default_rng(0)
    x = mfcc.embed_all([c.samples for c in stored])
    q = mfcc.embed_all([speech.add_noise(c.samples, 20.0, rng) for c in queries])
    return stored, queries, x, q


def test_join_search_and_accuracy(
        dsn: str, clips: tuple[list[speech.Clip], list[speech.Clip], np.ndarray, np.ndarray]
        ) -> None:
    stored, queries, x, q = clips
    assert len(stored) == 120 and len(queries) == 20 and x.shape == (120, mfcc.DIM)
    name = "aud_" + uuid.uuid4().hex[:10]
    words = [c.word for c in queries]
    with vecpg.connect(dsn) as client:
        store.create(client, name, stored, x, hnsw=False)  # exact, to compare with numpy
        try:
            ev = store.evaluate(client, name, q, words, k=5)
            with client.connection() as conn:
                n_rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(client.schema, f"{name}_clips"))).fetchone()
        finally:
            store.drop(client, name)
    assert n_rows == (120,)
    # measured on this slice: top-1 1.00, top-5 1.00 (20 queries); the full set: 0.957
    assert ev.top1 >= 0.85 and ev.topk >= 0.9
    assert ev.join_ms > 0 and ev.search_ms > 0
    d = 1.0 - q.astype(np.float64) @ x.T.astype(np.float64)
    for i, row in enumerate(ev.results):
        assert np.allclose([m.distance for m in row], np.sort(d[i])[:5], atol=1e-4)
        for m in row:   # the records came from the join, for the clip with that id
            c = stored[m.clip_id - 1]
            assert (m.word, m.voice, m.speed) == (c.word, c.spec.voice, c.spec.speed)
            assert m.duration == pytest.approx(c.duration, abs=1e-4)
            assert d[i, m.clip_id - 1] == pytest.approx(m.distance, abs=1e-4)


def test_rendering_is_deterministic_and_noise_has_its_snr(tmp_path: Path) -> None:
    spec = speech.Spec("seven", "en-gb+f4", 175, 50)
    a = speech.render([spec], tmp_path / "a")[0]
    b = speech.render([spec], tmp_path / "b")[0]
    assert np.array_equal(a.samples, b.samples) and 0.3 < a.duration < 1.5
    noisy = speech.add_noise(a.samples, 20.0, np.random.default_rng(1))
    snr = 10 * np.log10(np.mean(a.samples.astype(np.float64) ** 2)
                        / np.mean((noisy - a.samples).astype(np.float64) ** 2))
    assert abs(snr - 20.0) < 0.3
    v = mfcc.embed(a.samples)
    assert v.shape == (mfcc.DIM,) and v.dtype == np.float32
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
