// Live paging (templates/live.html, broadcaster/live.py): capture the microphone with MediaRecorder (WebM/Opus),
// a chime first, and send each 250 ms chunk to the panel in order; the panel relays it to the loudspeakers as a
// live stream.
(() => {
  const form = document.getElementById("live-form");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrf_token]").value;
  const status = document.getElementById("live-status");
  const startButton = document.getElementById("live-start");
  const endButton = document.getElementById("live-end");
  const t = form.dataset;
  const TIMESLICE_MS = 250;
  let session = null;
  let recorder = null;
  let media = null;
  let queue = Promise.resolve();
  let startedAt = null;
  let sentFirst = false;

  function say(state, detail) {
    const words = { connecting: t.tConnecting, live: t.tLive, ended: t.tEnded, failed: t.tFailed }[state] || "";
    status.textContent = detail ? `${words}: ${detail}` : words;
    status.dataset.state = state;
    form.dataset.state = state;
  }

  function stopCapture() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (media) media.getTracks().forEach((track) => track.stop());
    recorder = null;
    media = null;
  }

  function fail(detail) {
    stopCapture();
    say("failed", detail);
    startButton.disabled = false;
    endButton.disabled = true;
  }

  function send(blob) {
    const headers = { "Content-Type": "audio/webm", "X-CSRFToken": csrf };
    if (!sentFirst) {
      headers["X-Live-Started-At"] = String(startedAt);
      sentFirst = true;
    }
    const id = session.id;
    queue = queue.then(() => fetch(`/live/${id}/audio`, { method: "POST", headers, body: blob })
      .then((r) => r.json().then((data) => {
        if (!r.ok) fail(data.error ? data.error.message : String(r.status));
        else if (data.state === "live" && status.dataset.state !== "live") say("live");
      }))
      .catch(() => fail(t.tLost)));
  }

  // The chime before a live announcement, mixed into what is sent (and recorded): a two-tone "ding-dong", then the
  // microphone. Where Web Audio is missing, the microphone alone.
  let audio = null;
  function withChime(micStream) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return micStream;
    audio = audio || new Context();
    const out = audio.createMediaStreamDestination();
    audio.createMediaStreamSource(micStream).connect(out);
    const now = audio.currentTime;
    [[659.25, 0], [523.25, 0.45]].forEach(([hz, at]) => {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, now + at);
      gain.gain.exponentialRampToValueAtTime(0.5, now + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.6);
      tone.connect(gain).connect(out);
      tone.start(now + at);
      tone.stop(now + at + 0.65);
    });
    return out.stream;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const zones = [...form.querySelectorAll("input[name=zones]:checked")].map((box) => box.value);
    if (!zones.length) {
      say("failed", t.tNoZone);
      return;
    }
    if (!window.MediaRecorder || !MediaRecorder.isTypeSupported("audio/webm;codecs=opus")) {
      say("failed", t.tNoOpus);  // the loudspeakers play WebM/Opus: an older iPhone records another format
      return;
    }
    startButton.disabled = true;
    say("connecting");
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      fail(t.tNoMic);
      return;
    }
    let data;
    try {
      const r = await fetch(form.dataset.startUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ zones, priority: form.querySelector("[name=priority]").value }),
      });
      data = await r.json();
      if (!r.ok) {
        fail(data.error ? data.error.message : String(r.status));
        return;
      }
    } catch (err) {
      fail(t.tLost);
      return;
    }
    session = data;
    form.dataset.session = session.id;
    recorder = new MediaRecorder(withChime(media), { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
    recorder.addEventListener("dataavailable", (e) => { if (e.data && e.data.size) send(e.data); });
    sentFirst = false;
    startedAt = Date.now();  // "the browser started sending": the latency is measured from here
    recorder.start(TIMESLICE_MS);
    endButton.disabled = false;
  });

  endButton.addEventListener("click", async () => {
    endButton.disabled = true;
    const done = new Promise((resolve) => {
      if (recorder && recorder.state !== "inactive") recorder.addEventListener("stop", resolve, { once: true });
      else resolve();
    });
    stopCapture();
    await done;
    await queue;
    try {
      const r = await fetch(`/live/${session.id}/end`, { method: "POST", headers: { "X-CSRFToken": csrf } });
      const data = await r.json();
      say(data.state || "ended", data.reason || "");
    } catch (err) {
      say("failed", t.tLost);
    }
    startButton.disabled = false;
  });
})();
