"""Reports from run and CV folders, read through `btc.runfolder` only (DESIGN.md, Layout).

- `runs.py`: a run / CV folder read once (`Run`: config, metrics, pooled predictions, folds 1…K);
- `tables.py`: the four papers' tables next to the published numbers (`papers.py`);
- `checks.py`: a corrupt metric value stops the report with one line naming file and field;
- `protocols.py`: the same settings under the paper's and the leak-free protocol, side by side;
- `stats.py`: bootstrap CIs and McNemar's test; `provenance.py`: what produced each run;
- `build.py`: `build_report` → `model.Report`; `render.py`: Markdown, LaTeX, CSV, HTML;
- `plots.py`: confusion matrix, learning curves, ROC of a run or CV folder;
- `summary.py`: a CV folder's `report.md`.

Nothing here prints: `btc/commands/report.py` shows or writes what `build_report` returns.
"""
