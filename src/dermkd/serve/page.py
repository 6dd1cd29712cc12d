"""The service's one page: upload or drop an image, see the class probabilities as bars and
the Grad-CAM overlay (where the model can be explained: a run or checkpoint, not an export).
Self-contained (no external script, style or font), so it works offline."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dermkd</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
#drop{border:2px dashed #888;padding:2rem;text-align:center;cursor:pointer}
.bar{background:#4a7;height:1rem}.row{display:grid;grid-template-columns:14rem 1fr 4rem;gap:.5rem;margin:.2rem 0}
.warn{background:#fee;border:1px solid #c66;padding:.5rem}#overlay{max-width:100%;margin-top:1rem}
</style></head><body>
<h1>dermkd</h1>
<p class="warn"><strong>Research use only.</strong> Not a medical device; not for diagnosis.</p>
<div id="drop">Drop a dermoscopic image here, or click to choose one
<input id="file" type="file" accept="image/*" hidden></div>
<p id="status"></p><div id="result"></div><img id="overlay" alt="Grad-CAM overlay" hidden>
<script>
const drop = document.getElementById("drop"), file = document.getElementById("file");
drop.onclick = () => file.click();
drop.ondragover = e => e.preventDefault();
drop.ondrop = e => { e.preventDefault(); send(e.dataTransfer.files[0]); };
file.onchange = () => send(file.files[0]);
async function send(f) {
  const status = document.getElementById("status"), out = document.getElementById("result");
  const overlay = document.getElementById("overlay");
  status.textContent = "scoring " + f.name + " ..."; out.innerHTML = ""; overlay.hidden = true;
  const body = new FormData(); body.append("files", f);
  const r = await fetch("/v1/predict", {method: "POST", body});
  const j = await r.json();
  if (!r.ok) { status.textContent = "error: " + j.error; return; }
  const p = j.predictions[0];
  status.textContent = "malignant probability " + p.malignant_probability.toFixed(3) + " (" + j.timing_ms + " ms)";
  for (const [c, v] of Object.entries(p.probabilities).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div"); row.className = "row";
    row.innerHTML = "<span></span><div><div class='bar'></div></div><span></span>";
    row.children[0].textContent = c; row.children[2].textContent = v.toFixed(3);
    row.querySelector(".bar").style.width = (100 * v).toFixed(1) + "%";
    out.appendChild(row);
  }
  const cam = new FormData(); cam.append("file", f);
  const e = await fetch("/v1/explain", {method: "POST", body: cam});
  if (e.ok) { overlay.src = URL.createObjectURL(await e.blob()); overlay.hidden = false; }
}
</script></body></html>
"""
