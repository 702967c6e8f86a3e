"""ML subcommands: train, evaluate, caption. TensorFlow is imported only when one of them runs,
so the service commands stay light."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    settings = get_settings()

    train = commands.add_parser("train", help="train a captioner on Flickr8k (train split; val for selection)")
    train.add_argument("--flickr8k", type=Path, default=settings.flickr8k_dir)
    train.add_argument("--features", type=Path, default=settings.data_dir / "features", help="feature cache root")
    train.add_argument("--out", type=Path, help="run directory (required unless --resume); the bundle goes to OUT/bundle, the checkpoint of the last epoch to OUT/checkpoint")
    train.add_argument("--version", help="model version name written into the bundle (required unless --resume)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last finished epoch, with the settings it was started with (from RUN_DIR/checkpoint); other flags are refused, except --flickr8k and --features to say where the data lies now")
    train.add_argument("--encoder", default="efficientnet_lite2", choices=["efficientnet_lite0", "efficientnet_lite2", "resnet50"])
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--stop-after-epochs", type=int, help="end cross-entropy after N epochs (schedule unchanged)")
    train.add_argument("--scst-epochs", type=int, default=0, help="self-critical CIDEr-D fine-tuning epochs after cross-entropy")
    train.add_argument("--scst-learning-rate", type=float, default=2e-5)
    train.add_argument("--scst-contrast", type=float, default=0.0, help="self-critical reward minus this × the caption's CIDEr-D on three other photos of the batch (pays specific captions over stock ones)")
    train.add_argument("--init-from", type=Path, help="continue from this bundle's weights and vocabulary")
    train.add_argument("--mirror", action="store_true", help="also train on features of the mirrored photos (augmentation)")
    train.add_argument("--crop-views", type=int, default=0, metavar="N", help="also train on features of N random crops of each train photo (augmentation; each cached once)")
    train.add_argument("--scst-mirror", action="store_true", help="with --mirror, self-critical epochs see half of the photos mirrored too")
    train.add_argument("--label-smoothing", type=float, default=0.0, help="ε of a uniform target mixed into cross-entropy (regulariser)")
    train.add_argument("--bfloat16", action="store_true", help="compute in bfloat16 over float32 weights: faster on some CPUs with AVX512-BF16 (an AVX-512 EPYC), slower on others (a Xeon without AMX) and when emulated (a warning says when the CPU lacks the instructions); benchmarks/training_step.py measures it")
    train.add_argument("--length-penalty", type=float, default=0.0, help="beam search's length-normalisation α, written into the bundle")
    train.add_argument("--ema", type=float, help="cross-entropy keeps this moving average of the weights (e.g. 0.999); val scores it beside the raw weights and the better may be kept")
    train.add_argument("--scst-ema", type=float, help="the same for the self-critical epochs (fewer steps: e.g. 0.99)")
    train.add_argument("--keep-epoch-weights", action="store_true", help="also save each epoch's weights under OUT/epochs/")
    train.add_argument("--finetune-encoder-from", type=int, metavar="BLOCK", help="fine-tune the encoder's blocks from BLOCK on and its head with the decoder (EfficientNet-Lite2 has blocks 1..20; 20 = the last block), from cached activations entering BLOCK")
    train.add_argument("--encoder-lr-scale", type=float, default=0.1, help="with --finetune-encoder-from, the encoder top's learning rate as a fraction of the decoder's")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=5e-4)
    train.add_argument("--patience", type=int, default=3)
    train.add_argument("--seed", type=int, default=1, help="seeds weight init, dropout, the mirror draws, the batch order and the SCST photo order and caption draws")
    train.add_argument("--select-beam", type=int, default=1, help="score and select epochs on val with this beam width (1: greedy), with --length-penalty and blocking")
    train.add_argument("--train-limit", type=int, help="use only the first N train images (smoke runs)")
    train.add_argument("--val-limit", type=int, help="use only the first N val images")
    train.add_argument("--decoder", type=json.loads, default={}, help='DecoderConfig overrides as JSON, e.g. \'{"units": 256}\'')
    train.set_defaults(handler=run_train)
    # every flag at its default, to tell which ones a --resume was given
    train.set_defaults(flag_defaults=vars(train.parse_args(["--resume", "RUN_DIR"])))


# Flags a --resume may be given: where the run's data lies now, and argparse's own entries.
RESUME_FLAGS = {"resume", "flickr8k", "features", "handler", "flag_defaults"}


def run_train(args: argparse.Namespace) -> int:
    from captionbot.errors import CommandError
    from training.checkpoint import CHECKPOINT_DIR
    from training.pipeline import train_on_flickr8k
    from training.train import TrainConfig

    if args.resume is not None:
        return resume_train(args)
    if args.out is None or args.version is None:
        raise CommandError("--out and --version are required (or --resume RUN_DIR to continue a run)")
    if (args.out / CHECKPOINT_DIR).exists():  # hours of training are not overwritten by a mistyped --out
        raise CommandError(f"{args.out} holds a run already: --resume {args.out} continues it, or choose another --out")
    config = TrainConfig(
        encoder=args.encoder,
        epochs=args.epochs,
        stop_after_epochs=args.stop_after_epochs,
        scst_epochs=args.scst_epochs,
        scst_learning_rate=args.scst_learning_rate,
        scst_contrast=args.scst_contrast,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        select_beam=args.select_beam,
        seed=args.seed,
        mirror_augment=args.mirror,
        crop_views=args.crop_views,
        scst_mirror=args.scst_mirror,
        label_smoothing=args.label_smoothing,
        bfloat16=args.bfloat16,
        length_penalty=args.length_penalty,
        ema_momentum=args.ema,
        scst_ema_momentum=args.scst_ema,
        keep_epoch_weights=args.keep_epoch_weights,
        finetune_encoder_from=args.finetune_encoder_from,
        encoder_learning_rate_scale=args.encoder_lr_scale,
        decoder=args.decoder,
    )
    result = train_on_flickr8k(
        args.flickr8k, args.features, args.out, config, args.version, args.train_limit, args.val_limit, init_from=args.init_from
    )
    return _report_run(result, args.out)


def resume_train(args: argparse.Namespace) -> int:
    """`train --resume RUN_DIR`: the run's settings come from its checkpoint, so a flag that would
    change them is refused; a finished run says so and succeeds."""
    from captionbot.errors import CommandError
    from training.checkpoint import CheckpointError, read_checkpoint
    from training.pipeline import resume_on_flickr8k

    given = [f"--{dest.replace('_', '-')}" for dest, default in args.flag_defaults.items() if dest not in RESUME_FLAGS and getattr(args, dest) != default]
    if given:
        raise CommandError(f"--resume continues with the settings the run was started with: drop {', '.join(given)}")
    try:
        checkpoint = read_checkpoint(args.resume)
        if checkpoint.progress.finished:
            last = checkpoint.progress.history[-1]
            print(f"{args.resume} already finished ({last['stage']} epoch {last['epoch']}); its bundle is {args.resume / 'bundle'}")
            return 0
        moved = {key: getattr(args, key) for key in ("flickr8k", "features") if getattr(args, key) != args.flag_defaults[key]}
        result = resume_on_flickr8k(args.resume, checkpoint, **moved)
    except CheckpointError as error:
        raise CommandError(str(error)) from error
    return _report_run(result, args.resume)


def _report_run(result, run_dir: Path) -> int:
    """Training curves beside the run, the best val scores on stdout."""
    from training.plots import plot_training_curves

    plot_training_curves(result.history, run_dir / "training_curves.png")
    print(json.dumps({"bundle": str(result.bundle_dir), "best_val": result.best_scores}, indent=2))
    return 0 if result.bundle_dir.exists() else 1


def register_evaluate(commands: argparse._SubParsersAction) -> None:
    settings = get_settings()
    evaluate = commands.add_parser("evaluate", help="score a bundle on a Flickr8k split (greedy, beam 3, beam 5): BLEU, CIDEr-D, how specific its captions are, plots")
    evaluate.add_argument("bundle", type=Path, nargs="?", default=settings.model_dir)
    evaluate.add_argument("--split", default="val", choices=["train", "val", "test"])
    evaluate.add_argument("--limit", type=int, help="only the first N images of the split")
    evaluate.add_argument("--out", type=Path, required=True, help="directory for scores.json, gallery.png, attention_*.png")
    evaluate.add_argument("--flickr8k", type=Path, default=settings.flickr8k_dir)
    evaluate.add_argument("--features", type=Path, default=settings.data_dir / "features")
    evaluate.add_argument("--record", action="store_true", help="also write the scores into the bundle's config.json")
    evaluate.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_bundle

    report = evaluate_bundle(args.bundle, args.flickr8k, args.features, args.out, args.split, args.limit, record_in_bundle=args.record)
    print(json.dumps({"scores": report["scores"], "references": report["references"]}, indent=2))
    return 0


def register_length_penalty(commands: argparse._SubParsersAction) -> None:
    settings = get_settings()
    tune = commands.add_parser("tune-length-penalty", help="choose beam search's length-normalisation α on val")
    tune.add_argument("bundle", type=Path, nargs="?", default=settings.model_dir)
    tune.add_argument("--alphas", type=lambda text: tuple(float(a) for a in text.split(",")), help="comma-separated α values")
    tune.add_argument("--beam", type=int, default=3)
    tune.add_argument("--limit", type=int, help="only the first N val images")
    tune.add_argument("--write", action="store_true", help="store the best α (by val CIDEr-D) in the bundle")
    tune.add_argument("--out", type=Path, help="also write the sweep to this JSON file")
    tune.add_argument("--flickr8k", type=Path, default=settings.flickr8k_dir)
    tune.add_argument("--features", type=Path, default=settings.data_dir / "features")
    tune.set_defaults(handler=run_length_penalty)


def run_length_penalty(args: argparse.Namespace) -> int:
    from training.length_penalty import DEFAULT_ALPHAS, tune_on_val, write_length_penalty

    best, sweep = tune_on_val(args.bundle, args.flickr8k, args.features, args.alphas or DEFAULT_ALPHAS, args.beam, args.limit)
    for row in sweep:
        print(f"α {row['length_penalty']:4.1f}: BLEU-4 {row['BLEU-4']:.4f} CIDEr-D {row['CIDEr']:.4f}, {row['mean_words']:.2f} words")
    if args.out:
        args.out.write_text(json.dumps({"bundle": str(args.bundle), "best": best, "sweep": sweep}, indent=2) + "\n")
    if args.write:
        write_length_penalty(args.bundle, best, sweep)
    print(f"best α {best}" + (f", written to {args.bundle}" if args.write else ""))
    return 0


def register_caption(commands: argparse._SubParsersAction) -> None:
    settings = get_settings()
    caption = commands.add_parser("caption", help="caption image files with a model bundle")
    caption.add_argument("images", type=Path, nargs="+")
    caption.add_argument("--model", type=Path, default=settings.model_dir, help="bundle directory")
    caption.add_argument("--beam", type=int, default=settings.caption_beam)
    caption.add_argument("--json", action="store_true", help='print one JSON list of {"image", "caption", "model"} (or {"image", "error"})')
    caption.add_argument("--raw", action="store_true", help="the model's text as it is, not as the chat shows it (capitalised, with a full stop)")
    caption.add_argument("--attention", type=Path, help="write the first image's attention map to this PNG")
    caption.set_defaults(handler=run_caption)


def run_caption(args: argparse.Namespace) -> int:
    """Loads the model once and captions every image in batches; an unreadable file is one line on
    stderr (status 1 at the end), the rest go on. Captions read as in the chat unless --raw."""
    import numpy as np

    from captioning.captioner import ENCODE_BATCH
    from captioning.images import ImageError, load_image_array
    from captioning.text import as_sentence

    settings = get_settings()
    captioner = _load_captioner(args.model, settings)
    size = captioner.encoder.input_size
    shown = (lambda text: text) if args.raw else as_sentence
    rows: list[dict] = []
    first_result = None
    for start in range(0, len(args.images), ENCODE_BATCH):
        batch_paths, pixels = [], []
        for path in args.images[start : start + ENCODE_BATCH]:
            try:
                pixels.append(load_image_array(path, size, settings.max_image_pixels))
                batch_paths.append(path)
            except (ImageError, OSError) as exc:
                rows.append({"image": str(path), "error": _unreadable(exc)})
        if not pixels:
            continue
        results = captioner.caption_pixels(np.stack(pixels), beam=args.beam)
        first_result = first_result or (batch_paths[0], pixels[0], results[0])
        rows.extend({"image": str(p), "caption": shown(r.text), "model": captioner.version} for p, r in zip(batch_paths, results))
    if args.attention and first_result:
        from captioning.attention_map import write_attention_png

        _, image, result = first_result
        write_attention_png(image, result.words, result.attention, result.grid_size, args.attention)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    for row in rows:
        if "error" in row:
            print(f"captionbot caption: {row['image']}: {row['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{row['image']}: {row['caption']}")
    return 1 if any("error" in row for row in rows) else 0


def _load_captioner(bundle: Path, settings):
    """The captioner, or CommandError naming the bundle that is missing or does not load."""
    from captionbot.errors import CommandError
    from captioning.bundle import BundleError
    from captioning.captioner import Captioner

    if not (bundle / "config.json").is_file():
        raise CommandError(f"no model bundle at {bundle} (no config.json there): set MODEL_DIR or pass --model")
    try:
        return Captioner.load(bundle, settings.resnet50_weights, settings.max_image_pixels)
    except (BundleError, OSError) as error:
        raise CommandError(f"the model bundle at {bundle} does not load: {error}") from error


def _unreadable(error: Exception) -> str:
    """Why a file cannot be captioned, in words (an OSError's strerror, not its repr)."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read it ({error.strerror})"
    return f"cannot caption it ({error})"
