// The upload page (announcement_upload.html). Progressive enhancement: record in the browser (MediaRecorder)
// and put the result into the file field. The button's and status's texts come from data-text-* attributes
// of .recorder (translated by the template).
(function () {
  "use strict";
  var box = document.querySelector(".recorder"), input = document.querySelector("input[name=file]");
  if (!box || !window.MediaRecorder || !navigator.mediaDevices || !window.DataTransfer) return;
  box.hidden = false;
  var text = box.dataset;
  var button = box.querySelector("[data-record]"), status = box.querySelector("[data-record-status]");
  var recorder = null, chunks = [];
  button.addEventListener("click", function () {
    if (recorder) { recorder.stop(); return; }
    navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
      chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (e) { chunks.push(e.data); };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (t) { t.stop(); });
        var type = recorder.mimeType || "audio/webm", ext = type.indexOf("ogg") >= 0 ? "ogg" : (type.indexOf("mp4") >= 0 ? "m4a" : "webm");
        var dt = new DataTransfer();
        dt.items.add(new File(chunks, "ghi-am." + ext, {type: type}));
        input.files = dt.files;
        recorder = null;
        button.textContent = text.textAgain;
        status.textContent = text.textReady;
      };
      recorder.start();
      button.textContent = text.textStop;
      status.textContent = text.textRecording;
    }).catch(function () { status.textContent = text.textNoMic; });
  });
})();
