"""Save/Load Motion Embedding: round trip with metadata, no overwrite, pickles and junk refused."""
import os

import pytest
import safetensors.torch
import torch

import folder_paths
from reenact_core.errors import ReenactError
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_pack import run_node

META = {"steps": 300, "final_loss": 0.0123, "fps": 6, "motion_bucket_id": 127, "width": 1024, "height": 576,
        "source_video": "wave.mp4", "base_model": "SVD_img2vid:0123456789ab"}


def an_embedding(frames=14, tokens=5, dim=64):
    return MotionEmbedding(torch.randn(frames + 1, tokens, dim), dict(META))


def save(embedding, prefix="motion/wave"):
    (path,) = run_node("SaveMotionEmbedding", motion_embedding=embedding, filename_prefix=prefix)
    return path


def load(name):
    folder_paths.filename_list_cache.clear()
    return run_node("LoadMotionEmbedding", embedding_name=name)


def test_round_trip_keeps_tokens_and_metadata(tmp_folders):
    original = an_embedding()
    path = save(original)
    assert path == str(tmp_folders / "embeddings" / "motion" / "wave_00001.safetensors")
    loaded, info = load("motion/wave_00001.safetensors")
    assert torch.equal(loaded.tokens, original.tokens)
    for key, value in META.items():
        assert loaded.metadata[key] == value, key
    assert (loaded.frames, loaded.tokens_per_frame, loaded.dim) == (14, 5, 64)
    assert "source_video=wave.mp4" in info and info.startswith(f"frames={loaded.frames}, tokens=")
    with safetensors.safe_open(path, framework="pt") as f:
        raw = f.metadata()
    assert raw["format"] == "reenact-anything/motion-embedding" and raw["format_version"] == "1"
    assert (raw["frames"], raw["tokens"], raw["dim"]) == ("14", "5", "64")


def test_names_that_look_like_numbers_stay_text(tmp_folders):
    embedding = MotionEmbedding(torch.randn(3, 1, 8), {"source_video": "123", "note": "hello"})
    save(embedding, "numeric")
    loaded, _ = load("numeric_00001.safetensors")
    assert loaded.metadata["source_video"] == "123" and loaded.metadata["note"] == "hello"


def test_never_overwrites(tmp_folders):
    first = save(an_embedding())
    before = open(first, "rb").read()
    second = save(an_embedding())
    assert os.path.basename(second) == "wave_00002.safetensors"
    assert open(first, "rb").read() == before
    (tmp_folders / "embeddings" / "motion" / "wave_00007.safetensors").write_bytes(b"user's own file")
    third = save(an_embedding())
    assert os.path.basename(third) == "wave_00008.safetensors"
    assert (tmp_folders / "embeddings" / "motion" / "wave_00007.safetensors").read_bytes() == b"user's own file"


@pytest.mark.parametrize("prefix", ["../escape", "motion/../../escape", "/tmp/absolute", "C:/windows", ""])
def test_unsafe_prefixes_refused(tmp_folders, prefix):
    with pytest.raises(ReenactError, match="expected a file name prefix"):
        save(an_embedding(), prefix)
    assert not list((tmp_folders).rglob("escape*"))


@pytest.mark.parametrize("name", ["old.pt", "old.ckpt"])
def test_pickle_refused_with_reason(tmp_folders, name):
    torch.save({"x": torch.zeros(1)}, tmp_folders / "embeddings" / name)
    with pytest.raises(ReenactError, match=rf"expected a \.safetensors motion embedding, got {name}.*pickle"):
        load(name)


def test_corrupt_file_is_a_clear_error(tmp_folders):
    path = save(an_embedding())
    data = open(path, "rb").read()
    truncated = tmp_folders / "embeddings" / "cut.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReenactError, match="cut.safetensors is truncated or corrupt"):
        load("cut.safetensors")


def test_other_safetensors_named(tmp_folders):
    lora = {"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 4)}
    safetensors.torch.save_file(lora, tmp_folders / "embeddings" / "some_lora.safetensors", metadata={"ss_network_dim": "4"})
    with pytest.raises(ReenactError, match="without our metadata.*lora_unet_down_blocks_0.*LoRA"):
        load("some_lora.safetensors")


def test_missing_file_caught_before_run(tmp_folders):
    node = __import__("nodes").NODE_CLASS_MAPPINGS["LoadMotionEmbedding"]
    message = node.validate_inputs("gone.safetensors")
    assert isinstance(message, str) and "gone.safetensors" in message
