"""The real-model path end to end: a diffusers-layout Wan folder (tiny random weights, VAE included)
through build-index, query and generate on the command line, with precomputed caption embeddings."""

from __future__ import annotations

import json

from conftest import write_tiny_wan
from motive_core.cli import main
from motive_core.data import load_clip_folder


def test_wan_folder_builds_queries_and_generates(tmp_path, clip_folder, capsys):
    captions = [clip.caption for clip in load_clip_folder(clip_folder)] + ["a query", ""]
    wan = write_tiny_wan(tmp_path / "wan", captions)

    assert main(["build-index", "--data", str(clip_folder), "--model", str(wan), "--out", str(tmp_path / "idx"),
                 "--proj-dim", "64", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["indexed"] == 8
    config = json.loads((tmp_path / "idx" / "config.json").read_text())["vector_config"]
    assert config["model"]["name"] == "wan" and config["geometry"]["temporal_factor"] == 4
    assert config["model"]["text"] == {"source": "prompt_embeds", "encoder": "unrecorded", "length": 5,
                                       "cleaning": config["model"]["text"]["cleaning"]}

    assert main(["generate", "--model", str(wan), "--prompt", "a query", "--steps", "2", "--guidance", "2",
                 "--out", str(tmp_path / "gen.mp4"), "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["frames"] == 9 and generated["height"] == 32

    # the index remembers the Wan folder, so query needs no --model
    assert main(["query", "--index", str(tmp_path / "idx"), "--video", str(tmp_path / "gen.mp4"),
                 "--prompt", "a query", "--top", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["positives"]) == 3 and -1.0 <= result["negatives"][0]["score"] <= result["positives"][0]["score"] <= 1.0

    assert main(["query", "--index", str(tmp_path / "idx"), "--video", str(tmp_path / "gen.mp4"),
                 "--prompt", "a caption nobody embedded"]) == 2
    assert "no embedding for the caption" in capsys.readouterr().err

    # and the app serves the same Wan model and index: /attribute ranks like the command line did
    import socket

    import app
    from gradio_client import Client, handle_file

    demo = app.build_app(wan, tmp_path / "idx", cache_dir=tmp_path / "cache")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, url, _ = app.launch(demo, port=port, host="127.0.0.1", prevent_thread_lock=True, show_error=True, quiet=True)
    try:
        out = Client(url, verbose=False).predict(handle_file(str(tmp_path / "gen.mp4")), "a query", "gen", 3, False,
                                                 api_name="/attribute")
        served = out[10] if isinstance(out[10], dict) else json.loads(out[10])
        assert [e["id"] for e in served["positives"]] == [e["id"] for e in result["positives"]]
    finally:
        demo.close()
