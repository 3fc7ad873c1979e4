"""Forecast the yearly sunspot numbers with an LSTM, held against the naive,
seasonal-naive (11 years) and, when statsforecast is installed, AutoARIMA
forecasts, over rolling origins; plot the last origin with the held-out truth.

    python examples/forecast_sunspots.py           # about 30 s on 2 CPU cores
    python examples/forecast_sunspots.py --small   # fewer training steps
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from jaxseq import forecast as fc
from jaxseq.bayes import load_sunspots

HORIZON, ORIGINS = 10, 4


def main(small: bool, out: Path) -> list[dict]:
    years, values = load_sunspots()
    config = fc.RecurrentConfig(
        cell="lstm",
        hidden=32,
        window=30,
        strategy="direct",
        steps=300 if small else 1500,
    )
    methods = [fc.recurrent(config, HORIZON), fc.naive(), fc.seasonal_naive(11)]
    if importlib.util.find_spec("statsforecast") is not None:
        methods.append(fc.auto_arima())
    rows = fc.evaluate(
        methods,
        {"sunspots": values},
        horizon=HORIZON,
        num_origins=ORIGINS,
        keep_forecasts=True,
    )
    print(
        f"{ORIGINS} origins, horizon {HORIZON} years; MASE scaled by the in-sample "
        "naive error"
    )
    print(
        f"{'method':<12} {'MASE':>6} {'sMAPE':>6} {'RMSE':>6} {'cov80':>6} {'cov90':>6}"
    )
    for r in rows:
        print(
            f"{r['method']:<12} {r['mase']:6.3f} {r['smape']:6.1f} {r['rmse']:6.1f} "
            f"{r['coverage80']:6.2f} {r['coverage90']:6.2f}"
        )
    last = rows[0]["origins"][-1]
    forecasts = {}
    for r in rows[:1] + rows[-1:]:  # the LSTM and the last baseline
        f = r["forecast"]
        bands = {p: (f.lower[p][-1], f.upper[p][-1]) for p in f.lower}
        forecasts[r["method"]] = (years[last : last + HORIZON], f.mean[-1], bands)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "forecast_sunspots.png"
    fc.plot_forecast(
        png,
        time=years[:last],
        history=values[:last],
        forecasts=forecasts,
        truth=(years[last:], values[last:]),
        history_tail=80,
        title=f"Yearly sunspots: {HORIZON}-year forecasts from {years[last]}",
        units="sunspot number (SILSO v1)",
        time_label="year",
    )
    print(f"wrote {png}")
    assert rows[0]["mase"] < rows[1]["mase"], "the LSTM should beat the naive method"
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="fewer training steps")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="PNG folder")
    args = parser.parse_args()
    main(args.small, args.out)
