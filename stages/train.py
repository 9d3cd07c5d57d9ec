"""Stage `train`: fit model.arch on the prepared train split and keep the weights `train.keep` says (the last,
or the best by val accuracy).

With ``train.distribute`` = mirrored or multi_worker the same recipe runs on several devices or machines
(see :mod:`digitpipe.distribute`); only the chief writes the model, ``dvclive/`` and ``metrics/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from digitpipe.calibration import fit_words, rough_fit
from digitpipe.errors import DigitpipeError, run_main, take_back_sigterm
from digitpipe.files import write_json
from digitpipe.inference import KerasPredictor
from digitpipe.limits import MODEL
from digitpipe.metrics import UNEVEN, learned_nothing
from digitpipe.params import load_params
from digitpipe.prepared import load_prepared

PREPARED = Path("data/prepared")
LOGS = Path("dvclive")
METRICS = Path("metrics/train.json")
TIME = Path("metrics/time.json")
PLATFORM = Path("metrics/platform.json")
# set when a multi-worker run fails: TensorFlow's collective runtime, torn down at interpreter exit, then prints
# tracebacks of its own after the one-line error (a thread pool's bad file descriptor), so the process ends at once
ENDS_AT_ONCE: list[bool] = []


def main() -> None:
    params = load_params(["seed", "augment", "model", "train"])
    t = params["train"]
    from digitpipe import distribute

    cluster, _ = distribute.cluster_from_env(), distribute.peer_timeout()  # both refused here if bad
    if cluster is not None and t["distribute"] != "multi_worker" and not cluster.is_chief:
        raise DigitpipeError(f"TF_CONFIG makes this process {cluster.name} of a {cluster.size}-task cluster, but "
                             f"train.distribute is {t['distribute']}: set train.distribute=multi_worker")
    multi = t["distribute"] == "multi_worker"
    if multi and cluster is not None and not cluster.is_chief and os.environ.get("DVC_STAGE"):
        raise DigitpipeError(f"TF_CONFIG makes this process {cluster.name}, which writes no outputs: under `dvc "
                             "repro` DVC would delete this clone's model and metrics and then fail for want of them; "
                             "on every machine but the chief run `python -m stages.train`")
    train, val = load_prepared(PREPARED / "train.npz"), load_prepared(PREPARED / "val.npz")
    from digitpipe.runtime import load_keras

    load_keras(pinned=True)  # only now: bad params and missing data are refused before TensorFlow's slow import
    local = None
    if multi and cluster is None:  # no cluster given: this process is the chief of train.replicas local workers
        from digitpipe.launch import LocalWorkers

        local = LocalWorkers(t["replicas"], [sys.executable, "-m", "stages.train"])
        cluster = local.cluster(0)
        os.environ["TF_CONFIG"] = local.config(0)
    watchdog = distribute.start_watchdog(cluster, local.pids() if local else []) if multi else None
    try:
        train_and_write(params, train, val, cluster if multi else None, watchdog)
        if watchdog:
            watchdog.stop()  # before reaping the local workers, which it would take for lost
        codes = local.wait() if local else {}
    except BaseException as err:
        if watchdog:
            watchdog.stop()  # first: the local workers stopped next are no failure to report
        if local:
            local.stop()
        if multi:
            ENDS_AT_ONCE.append(True)
        lost = distribute.cluster_failure(cluster, err, began=watchdog.began) if multi else None
        if lost:  # a peer gone mid-run, or a port taken: one line, not TensorFlow's traceback
            raise DigitpipeError(lost) from None
        raise
    finally:
        if watchdog:
            watchdog.stop()
    if any(codes.values()):
        raise DigitpipeError(local.failed() or f"local workers exited with codes {codes}")


def train_and_write(params: dict, train, val, cluster, watchdog) -> None:
    """Train (on this process's share, when distributed) and, on the chief, write the outputs."""
    from digitpipe import distribute, headline, training
    from digitpipe.card import Card
    from digitpipe.models import Augment
    from digitpipe.runtime import platform_facts

    seed, t, arch = params["seed"], params["train"], params["model"]["arch"]
    recipe = training.Recipe.from_params(t)
    strategy = distribute.make_strategy(t["distribute"], t["replicas"], cluster, watchdog.timeout if watchdog else 0)
    take_back_sigterm()  # the multi-worker strategy's own handler ignores SIGTERM
    chief = cluster is None or cluster.is_chief
    if cluster is not None:
        if watchdog:
            watchdog.progress("checking that every worker has the same params, code and data")
        differ = distribute.differing(strategy, {
            "params.yaml": distribute.agreement_token(params),
            "code": distribute.agreement_token(distribute.code_identity()),
            "prepared data": distribute.agreement_token(train.x, train.y, val.x, val.y)})
        if differ:
            raise DigitpipeError(
                f"{cluster.name}: the workers differ in {', '.join(differ[:-1])}{' and ' if differ[1:] else ''}"
                f"{differ[-1]}" +
                (" (the train stage's Python files, or the TensorFlow, Keras or NumPy versions)" if "code" in differ
                 else "") + "; every machine needs the same commit, params.yaml and data/prepared (commit params "
                "rather than passing them with -S on the chief alone)")
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    where = f"{cluster.name} of {cluster.size} workers, " if cluster else ""
    if chief:
        print(f"train: {len(train.x)} train / {len(val.x)} val images ({len(train.classes)} classes, "
              f"data.normalize={train.normalize}), arch {arch}, {recipe.schedule} lr {recipe.lr}, "
              f"batch {recipe.batch_size}, up to {recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''}"
              f"{'; classes weighed as balanced' if recipe.class_weight == 'balanced' else ''}; "
              f"distribute {t['distribute']} "
              f"({where}{replicas} replica{'s' if replicas > 1 else ''})", flush=True)
    if chief and recipe.schedule == "cosine" and recipe.warmup_epochs >= recipe.epochs:
        print(f"train: note: train.warmup_epochs ({recipe.warmup_epochs}) is not below train.epochs "
              f"({recipe.epochs}): the whole run warms up toward train.lr and never decays, fine for a quick try; "
              "set train.warmup_epochs below train.epochs for the full schedule", flush=True)
    card = Card(classes=train.classes, normalize=train.normalize, params=params)
    extra = ()
    if chief:
        from dvclive import Live
        from dvclive.keras import DVCLiveCallback

        extra = (DVCLiveCallback(live=Live(dir=str(LOGS), save_dvc_exp=False, dvcyaml=False, report=None)),)
    run = training.train_model(arch, (train.x, train.y), (val.x, val.y), num_classes=len(train.classes),
                               augment=Augment.from_params(params["augment"]), recipe=recipe, seed=seed,
                               model_path=MODEL, extra_callbacks=extra, card=card, strategy=strategy, chief=chief,
                               watchdog=watchdog)
    summary = training.summarize_history(run.history, run.seconds, recipe.keep)
    if chief:
        write_json(summary, METRICS)
        write_json(headline.timing(summary), TIME)
        write_json(platform_facts(), PLATFORM)
        print(f"train: kept epoch {summary['kept_epoch']} of {summary['epochs_run']} (train.keep={recipe.keep}), val "
              f"accuracy {summary['kept_val_accuracy']:.4f} (best {summary['best_val_accuracy']:.4f} at epoch "
              f"{summary['best_epoch']}), {summary['train_seconds']} s; temperature {run.temperature} ("
              f"{fit_words(len(val.y), round((1 - summary['kept_val_accuracy']) * len(val.y)))}) -> {MODEL}, "
              f"{METRICS}, {TIME}, {PLATFORM}, {LOGS}/")
        if note := rough_fit(len(val.y)):
            print(f"train: note: {note}")
        collapsed = learned_nothing(summary["kept_val_accuracy"], summary["kept_val_loss"], val.y, train.classes,
                                    predicted=lambda: KerasPredictor(MODEL).raw_probabilities(val.x).argmax(axis=1))
        if collapsed and collapsed.startswith(UNEVEN):
            print(f"train: warning: {collapsed}: it tells the classes apart, and gives up common images for rare "
                  f"ones. Judge it by macro F1 (metrics/eval.json); train.class_weight=balanced (this run's: "
                  f"{recipe.class_weight}) weighs every class alike, and more images of the rare classes help most",
                  file=sys.stderr, flush=True)
        elif collapsed:
            print(f"train: warning: {collapsed}; a lower train.lr (this run's: {recipe.lr}), a warm-up "
                  "(train.warmup_epochs) or more epochs usually mends it", file=sys.stderr, flush=True)
    if strategy is not None:
        print(f"train: {cluster.name if cluster else 'all replicas'}: weights fingerprint "
              f"{distribute.fingerprint(run.model.get_weights())}", flush=True)
    distribute.barrier(strategy if cluster else None, watchdog, "waiting for the chief to write the outputs")


if __name__ == "__main__":
    try:
        run_main(main)
    except SystemExit as done:  # the error, if any, is printed and the partial model removed by now
        if not ENDS_AT_ONCE:
            raise
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(done.code if isinstance(done.code, int) else 1)
