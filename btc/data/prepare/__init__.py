"""The machinery every `btc prepare <source>` shares, one concept per module (DESIGN.md, Layout).

- `inputs`: listing a source tree, unique output names, `Skipped` (an input prepare could not use).
- `staging`: the staging folder `OUT.partial/` (resume cache, atomic swap into OUT).
- `ownership`: which datasets and files are btc's (`.btc-dataset` marker, btc 0.1 adoption, a
  user's files refused, old datasets retired under recorded names).
- `work`: the inputs of one run as cached rows or tasks, run over a pool of worker processes.
- `writing`: writing one prepared image into the staging folder and the manifest fields of what
  was written.
- `finishing`: manifest, audit, dataset.yaml and swap of a finished run → `PrepareSummary`.
- `classes`: the class order shared by the public datasets and their default tasks.

A prepare writes its dataset in the staging folder and moves it into place only once
`manifest.csv` and `dataset.yaml` are written, so OUT is either absent, the previous complete
dataset, or the new complete dataset: never half-written (DESIGN.md, Conventions). A source
(`btc.data.sources.kaggle` is a complete example) uses them as::

    stage = Stage(out, source="kaggle", params={"size": 256, ...})   # validates OUT, resumes
    work = Work(stage, skipped)
    for key, src_path in inputs:            # cached row of an unchanged input, or a task
        work.add(key, src_path, {"path": ..., "size": ...}, worker=prepare_one, description="prepare")
    work.run(workers, progress)             # workers write into stage.dir and return rows,
                                            # each recorded at once (resumable)
    return finish(stage, work.rows, work.keys, ...)   # → PrepareSummary

A worker reads `task["src"]` and returns `done(task, row)` or `failed(task, reason)`;
`writing.read_gray_row` is the whole worker of a plain image file.
"""
