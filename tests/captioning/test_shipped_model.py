"""The default bundle committed in models/default: small enough to ship, and its captions name
what is in the photo (three val photos whose five references all agree on the subject)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import DEFAULT_MODEL_DIR
from captioning.captioner import Captioner

DATA = Path(__file__).parents[1] / "data" / "val"
EXPECTED_WORDS = {
    "3695064885_a6922f06b2.jpg": {"dog", "dogs"},
    "3346918203_986dca6641.jpg": {"bike", "bicycle", "biker", "bicyclist", "cyclist"},
    "2052953131_30834196fb.jpg": {"snow", "snowy", "mountain", "skier", "snowboarder"},
}


@pytest.fixture(scope="module")
def captioner():
    return Captioner.load(DEFAULT_MODEL_DIR)


def test_shipped_bundle_is_at_most_30_mb_and_names_its_encoder():
    size = sum(path.stat().st_size for path in DEFAULT_MODEL_DIR.iterdir())
    assert size <= 30 * 1024 * 1024
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["encoder"] in {"efficientnet_lite0", "efficientnet_lite2"}
    assert config["metrics"]["val_beam3"]["images"] == 1000


@pytest.mark.parametrize("name", sorted(EXPECTED_WORDS))
def test_shipped_model_names_the_subject_of_val_photos(captioner, name):
    caption = captioner.caption([DATA / name], beam=3)[0]
    assert set(caption.words) & EXPECTED_WORDS[name], caption.text
    assert 3 <= len(caption.words) <= 20


def test_caption_command_prints_one_json_list_and_reports_bad_files(tmp_path):
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_bytes(b"%PDF-1.4 not an image")
    images = [str(p) for p in sorted(DATA.glob("*.jpg"))] * 12 + [str(bad)]  # 37 images, one bad
    out = subprocess.run(
        [sys.executable, "-m", "captionbot.cli", "caption", "--json", "--attention", str(tmp_path / "att.png"), *images],
        capture_output=True, text=True, timeout=300,
    )
    rows = json.loads(out.stdout)
    assert out.returncode == 1  # one file failed
    assert len(rows) == len(images)
    good = [r for r in rows if "caption" in r]
    assert len(good) == 36 and {r["model"] for r in good} == {json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["version"]}
    assert [r for r in rows if "error" in r][0]["image"] == str(bad)
    assert (tmp_path / "att.png").stat().st_size > 10_000
