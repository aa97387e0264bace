"""What the benchmark scripts share: a DuckDB database of synthetic data of a given size."""
from __future__ import annotations

from pathlib import Path


def synthetic_database(prescriptions: int, folder: Path) -> str:
    """Generate about `prescriptions` prescriptions (seed 1) in `folder`, load them into a DuckDB file there
    and return its URL. The engine is closed again: DuckDB has one writer or many readers, and the
    measuring process opens the file itself."""
    from analysis import db, ingest, synthetic

    data = folder / "data"
    synthetic.generate(data, max(1, round(prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT)), seed=1)
    url = f"duckdb:///{folder / 'bench.duckdb'}"
    engine = db.make_engine(url)
    ingest.load_directory(engine, data, folder / "rejects.csv", replace=True)
    engine.dispose()
    return url
