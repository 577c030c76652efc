"""Live paging: mouth-to-loudspeaker latency (issue 17 §1), on real parts.

    python bench/bench_live.py                 # --runs 5, 4 loudspeakers, 3 s of speech each run
    python bench/bench_live.py --runs 1 --nodes 2

Each run is independent: a fresh Mosquitto, panel (HTTP, MQTT bridge, SQLite) and protocol simulator nodes
(``firmware-sim/node.py``, the node docs/protocol.md describes: it reads the live stream over HTTP as a vendor's
node would). Headless Chromium opens the live page with a fake microphone (``--use-file-for-fake-audio-capture``),
picks the zone, presses "Bắt đầu nói" and speaks; the page notes the moment it started sending (MediaRecorder
started; the panel stores it as ``client_started_at``) and every node notes when the first audio bytes of the
stream reached it (``first_audio_at``, node clock = this machine's clock). A run's latency is the **slowest**
loudspeaker's ``first_audio_at − client_started_at``; the figure is the median of the runs, every run listed.
Goal: ≤ 2 s. Writes the ``live`` key of bench/results.json (other keys kept).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from firmware_sim.fleet import Fleet  # noqa: E402
from firmware_sim.node import NodeConfig  # noqa: E402
from fleet_setup import ADMIN, Panel, start_mosquitto  # noqa: E402
from imageio_ffmpeg import get_ffmpeg_exe  # noqa: E402
from playwright import sync_api  # noqa: E402

from devices.protocol import parse_ts  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GOAL_S = 2.0


def voice_wav(path: Path, seconds: float = 6.0) -> Path:
    """A voice-like test signal for Chromium's fake microphone: a 220 Hz tone with a 4 Hz syllable tremolo."""
    subprocess.run([get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=220:duration={seconds}:sample_rate=48000", "-af", "tremolo=f=4:d=0.8",
                    "-ac", "1", str(path)], check=True)
    return path


def one_run(root: Path, browser: Any, nodes: int, speak_s: float) -> dict[str, Any]:
    broker = start_mosquitto(root / "broker")
    panel = Panel(root, broker)
    fleet = None
    try:
        panel.start()
        panel.api("POST", "/zones", 201, json={"code": "to-1", "name": "Tổ dân phố 1"})
        configs = []
        for i in range(1, nodes + 1):
            node_id = f"loa-{i:02d}"
            token = panel.api("POST", "/nodes", 201, json={"node_id": node_id, "zone": "to-1"})["token"]
            configs.append(NodeConfig(node_id=node_id, token=token, broker_host=broker.host,
                                      broker_port=broker.port, panel_public_key=panel.service.public_key_b64,
                                      data_dir=root / "nodes" / node_id))
        fleet = Fleet(configs)
        fleet.start()
        deadline = time.monotonic() + 30
        while not all(n["state"] == "online" for n in panel.api("GET", "/nodes", 200)):
            if time.monotonic() > deadline:
                raise RuntimeError("nodes did not come online")
            time.sleep(0.1)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
        context.grant_permissions(["microphone"], origin=panel.base)
        page = context.new_page()
        page.goto(f"{panel.base}/login")
        page.get_by_label(re.compile("Tên đăng nhập")).fill(ADMIN[0])
        page.get_by_label(re.compile("Mật khẩu")).fill(ADMIN[1])
        page.get_by_label(re.compile("Mật khẩu")).press("Enter")
        page.wait_for_url(re.compile(r".*/(?!login).*"))
        page.goto(f"{panel.base}/live")
        page.get_by_label("Tổ dân phố 1").check()
        page.get_by_role("button", name="Bắt đầu nói").click()
        page.wait_for_selector('#live-status[data-state="live"]', timeout=15_000)
        session_id = page.locator("#live-form").get_attribute("data-session")
        time.sleep(speak_s)
        page.get_by_role("button", name="Kết thúc").click()
        page.wait_for_selector('#live-status[data-state="ended"]', timeout=15_000)
        context.close()
        session = panel.api("GET", f"/live/{session_id}", 200)
        item = f"alert:{session['alert_id']}:1"
        deadline = time.monotonic() + 15
        while len(records := [p for p in fleet.plays() if p["item_id"] == item]) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(records)} of {nodes} nodes reported the live item")
            time.sleep(0.1)
        began = parse_ts(session["client_started_at"]).timestamp()
        per_node = {p["node_id"]: round(parse_ts(p["first_audio_at"]).timestamp() - began, 3) for p in records}
        return {"latency_s": max(per_node.values()), "per_node_s": per_node,
                "panel_first_audio_s": round(parse_ts(session["first_audio_at"]).timestamp() - began, 3),
                "bytes": session["bytes"]}
    finally:
        if fleet is not None:
            fleet.stop()
        panel.stop()
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--speak", type=float, default=3.0, help="seconds of speech per run")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    runs = []
    try:
        wav = voice_wav(work / "voice.wav")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--headless", "--disable-gpu", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"])
            for n in range(args.runs):
                run = one_run(work / f"run{n}", browser, args.nodes, args.speak)
                runs.append(run)
                print(f"run {n + 1}: {run['latency_s']:.3f} s (per node {run['per_node_s']}, panel got the first "
                      f"audio after {run['panel_first_audio_s']:.3f} s)", flush=True)
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = round(statistics.median(r["latency_s"] for r in runs), 3)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE.parent).stdout.strip()
    meta = {"commit": commit, "command": "python bench/bench_live.py"}
    result = {"median_s": median, "goal_s": GOAL_S, "met": median <= GOAL_S, "nodes": args.nodes,
              "runs": [r["latency_s"] for r in runs], "detail": runs, "_meta": meta}
    print(json.dumps({k: v for k, v in result.items() if k != "detail"}))
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data["live"] = result
    args.out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
