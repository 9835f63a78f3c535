"""Live sources: a video read through the stream reader (bounded queue), over HTTP on the loopback, webcam
indices and .streams files."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import cv2
import numpy as np
import pytest

from mirrordet.engine.sources import iter_frames, resolve_source
from mirrordet.engine.streams import Stream, stream_frames

N = 24


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(N):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))  # the frame number is in the pixel values
    writer.release()
    if not path.is_file() or path.stat().st_size == 0:
        pytest.skip("OpenCV cannot write MJPG video here")
    return path


def _number(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 10))


def test_a_file_read_as_a_stream_loses_nothing(video):
    got = [(n, _number(img)) for n, img, _ in stream_frames(Stream(str(video), live=False), maxsize=2)]
    assert [n for n, _ in got] == list(range(N)) and [v for _, v in got] == list(range(N))


def test_a_slow_consumer_of_a_live_stream_gets_the_newest_frames_in_order(video):
    got = []
    for n, img, _ in stream_frames(Stream(str(video), live=True), maxsize=2):
        got.append(n)
        assert _number(img) == n
        time.sleep(0.03)  # slower than the reader: frames are dropped, memory stays bounded (2 frames)
    assert got == sorted(got) and got[-1] == N - 1 and len(got) < N


def test_stopping_early_ends_the_reader(video):
    before = threading.active_count()
    for n, _, _ in stream_frames(Stream(str(video), live=True), maxsize=2):
        if n >= 2:
            break
    time.sleep(0.3)
    assert threading.active_count() <= before


def test_http_stream_on_the_loopback(video):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{video.name}"
        items = resolve_source(url)
        assert items == [Stream(url)]
        frames = list(iter_frames(items))
        if frames and frames[0].error:
            pytest.skip(f"this OpenCV build reads no HTTP streams ({frames[0].error})")
        assert len(frames) >= 1 and frames[0].image.shape == (48, 64, 3) and frames[0].path == url
    finally:
        server.shutdown()


def test_webcam_index_streams_file_and_unopenable_stream(tmp_path, video):
    assert resolve_source(0) == [Stream(0)] and resolve_source("0") == [Stream(0)]
    listing = tmp_path / "cams.streams"
    listing.write_text(f"# cameras\n0\nrtsp://127.0.0.1:8554/cam\n{video}\n")
    assert resolve_source(listing) == [Stream(0), Stream("rtsp://127.0.0.1:8554/cam"), Stream(str(video), live=False)]
    (frame,) = list(iter_frames([Stream(str(tmp_path / "missing.avi"), live=False)]))
    assert frame.image is None and "cannot open stream" in frame.error


def test_predict_reads_a_streams_file(tmp_path, video):
    from mirrordet import Model

    listing = tmp_path / "one.streams"
    listing.write_text(f"{video}\n")
    results = Model("yolov8n.yaml").predict(str(listing), imgsz=64, save=True, project=str(tmp_path), name="s")
    assert len(results) == N and all(r.orig_img.shape == (48, 64, 3) for r in results)
    assert (tmp_path / "s" / "v.mp4").is_file()  # the annotated stream, written as a video
