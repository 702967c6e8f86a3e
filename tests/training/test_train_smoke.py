"""Training end to end on a tiny Flickr8k-shaped dataset in the Kaggle layout (captions.txt +
Images/): features cached (and reused), one epoch, a loadable bundle, curves and evaluation plots."""
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from captionbot.cli import main
from captioning.captioner import Captioner
from captioning.specificity import SPECIFICITY_KEYS, caption_specificity
from training.evaluate import evaluate_bundle
from training.flickr8k import load_flickr8k
from training.pipeline import train_on_flickr8k
from training.plots import plot_training_curves
from training.train import TrainConfig

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}


def make_kaggle_flickr8k(root, images_per_split=(40, 10)):
    (root / "Images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, splits = ["image,caption"], {"train": [], "val": []}
    for split, count in zip(("train", "val"), images_per_split):
        for i in range(count):
            colour = list(COLOURS)[i % 3]
            name = f"{split}_{i}.jpg"
            image = Image.new("RGB", (320, 240), "white")
            x, y = rng.integers(20, 160), rng.integers(20, 100)
            ImageDraw.Draw(image).rectangle([x, y, x + 120, y + 120], fill=COLOURS[colour])
            image.save(root / "Images" / name, quality=90)
            rows += [f'{name},"A {colour} square on a white background."', f"{name},a {colour} box"]
            splits[split].append(name)
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(splits["train"]))
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(splits["val"]) + "\n")


@pytest.mark.slow
def test_one_epoch_on_fifty_images_writes_a_loadable_bundle_and_plots(tmp_path):
    data = tmp_path / "flickr8k"
    make_kaggle_flickr8k(data)
    assert len(load_flickr8k(data, "train")) == 40 and load_flickr8k(data, "val")[0].captions[1] == "a red box"
    config = TrainConfig(encoder="efficientnet_lite0", epochs=1, batch_size=16, min_word_count=1, mirror_augment=True,
                         keep_epoch_weights=True, decoder={"feature_dim": 64, "embed_dim": 64, "units": 64, "attention_dim": 64})
    result = train_on_flickr8k(data, tmp_path / "features", tmp_path / "run", config, "smoke-1")
    assert (result.bundle_dir / "config.json").exists()
    assert json.loads((result.bundle_dir / "config.json").read_text())["training"]["train_images"] == 40
    assert result.history[0]["epoch"] == 1 and result.history[0]["loss"] > 0
    plot_training_curves(result.history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000

    captioner = Captioner.load(result.bundle_dir)
    assert captioner.version == "smoke-1"
    assert isinstance(captioner.caption([data / "Images" / "val_0.jpg"])[0].text, str)

    report = evaluate_bundle(result.bundle_dir, data, tmp_path / "features", tmp_path / "eval", "val",
                             searches={"greedy": 1, "beam3": 3}, gallery_size=3, attention_maps=1)
    assert set(report["scores"]) == {"greedy", "beam3"} and 0.0 <= report["scores"]["beam3"]["BLEU-1"] <= 1.0
    assert (tmp_path / "eval" / "gallery.png").exists() and list((tmp_path / "eval").glob("attention_*.png"))
    val_references = {item.name: item.captions for item in load_flickr8k(data, "val")}
    beam3 = json.loads((tmp_path / "eval" / "captions_beam3.json").read_text())
    assert {k: report["scores"]["beam3"][k] for k in SPECIFICITY_KEYS} == caption_specificity(beam3, val_references).to_dict()
    # one reference per photo: "a <colour> square on a white background" (8 words in all), "a <colour> box" (5)
    assert report["references"] == {"photos": 10, "vocabulary_one_reference": 6.5, "mean_words": 5.0, "photos_without_people": 10}
    cached = json.loads((tmp_path / "features" / "efficientnet_lite0" / "names.json").read_text())
    assert len(cached) == 50  # train + val encoded once, then reused by the evaluation
    mirrored = json.loads((tmp_path / "features" / "efficientnet_lite0-mirrored" / "names.json").read_text())
    assert len(mirrored) == 40  # only train photos are seen mirrored
    assert [p.name for p in (tmp_path / "run" / "epochs").iterdir()] == ["01-xe.weights.npz"]

    sweep_file = tmp_path / "sweep.json"
    assert main(["tune-length-penalty", str(result.bundle_dir), "--alphas", "0,3", "--write", "--out", str(sweep_file),
                 "--flickr8k", str(data), "--features", str(tmp_path / "features")]) == 0
    sweep = json.loads(sweep_file.read_text())
    assert [row["length_penalty"] for row in sweep["sweep"]] == [0.0, 3.0] and sweep["best"] in (0.0, 3.0)
    assert Captioner.load(result.bundle_dir).config.length_penalty == sweep["best"]
