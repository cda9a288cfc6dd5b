// The attention viewer: one self-contained HTML page (inline CSS and JS, no
// network) that draws every selected map of a dump as a heatmap.
#include <string>

#include "src/attention/attention_job.h"

namespace aiayn {

namespace {

const char* kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>aiayn attention viewer</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 12px; }
  label { display: flex; gap: 4px; align-items: center; }
  #sentence-text { margin: 8px 0 12px; color: #444; }
  #panels { display: flex; flex-wrap: wrap; gap: 16px; }
  .panel h3 { margin: 0 0 4px; font-size: 13px; font-weight: 600; }
  canvas { border: 1px solid #ccc; }
  #tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 3px 6px;
         border-radius: 3px; font-size: 12px; display: none; }
  #status { color: #666; font-size: 12px; margin-top: 8px; }
</style>
</head>
<body>
<header>
  <strong>aiayn attention viewer</strong>
  <label>dump <input type="file" id="file" accept=".jsonl,.json"></label>
  <label>sentence <select id="sentence"></select></label>
  <label>kind <select id="kind"></select></label>
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
</header>
<div id="sentence-text"></div>
<div id="panels"></div>
<div id="tip"></div>
<div id="status">no dump loaded: choose a .jsonl file written by aiayn-attention</div>
<script id="dump" type="text/plain">@DUMP@</script>
<script>
"use strict";
window.onerror = (message, source, line) => {
  document.getElementById("status").textContent = "JS error: " + message + " (line " + line + ")";
};
const KINDS = {encoder_attention: "encoder self-attention", decoder_attention: "decoder self-attention",
               cross_attention: "encoder-decoder attention"};
let entries = [];
const $ = (id) => document.getElementById(id);

function parseDump(text) {
  return text.split("\n").filter((l) => l.trim().length > 0).map((l) => JSON.parse(l));
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text; select.appendChild(o);
}

function load(text) {
  entries = parseDump(text);
  const s = $("sentence"); s.innerHTML = "";
  entries.forEach((e, i) => option(s, i, "#" + e.index + ": " + e.source.slice(0, 50)));
  fillKinds();
}

function fillKinds() {
  const e = entries[+$("sentence").value]; if (!e) return;
  const k = $("kind"), previous = k.value; k.innerHTML = "";
  for (const name of Object.keys(KINDS)) if (e[name] !== undefined) option(k, name, KINDS[name]);
  if ([...k.options].some((o) => o.value === previous)) k.value = previous;
  fillLayersAndHeads();
}

function layerIds(e, kind) {
  return kind === "encoder_attention" ? e.layers.encoder : e.layers.decoder;
}

function fillLayersAndHeads() {
  const e = entries[+$("sentence").value]; if (!e) return;
  const l = $("layer"), h = $("head"), lv = l.value, hv = h.value;
  l.innerHTML = ""; h.innerHTML = "";
  option(l, "all", "all");
  layerIds(e, $("kind").value).forEach((layer, i) => option(l, i, String(layer)));
  option(h, "all", "all");
  if (e.heads === "mean") option(h, 0, "mean of heads");
  else { option(h, "mean", "mean of heads"); e.heads.forEach((head, i) => option(h, i, String(head))); }
  if ([...l.options].some((o) => o.value === lv)) l.value = lv;
  if ([...h.options].some((o) => o.value === hv)) h.value = hv;
  render();
}

function color(w) {  // white -> dark blue
  const t = Math.max(0, Math.min(1, w));
  return "rgb(" + Math.round(255 - 222 * t) + "," + Math.round(255 - 180 * t) + "," + Math.round(255 - 75 * t) + ")";
}

function heatmap(title, map, queries, keys) {
  const cell = Math.max(8, Math.min(28, Math.floor(480 / Math.max(1, keys.length))));
  const font = Math.min(12, cell);
  const ctx0 = document.createElement("canvas").getContext("2d");
  ctx0.font = font + "px sans-serif";
  const width = (list) => list.reduce((m, t) => Math.max(m, ctx0.measureText(t).width), 0) + 6;
  const left = width(queries), top = width(keys);
  const canvas = document.createElement("canvas");
  canvas.width = left + cell * keys.length + 2; canvas.height = top + cell * queries.length + 2;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = font + "px sans-serif"; ctx.fillStyle = "#222";
  queries.forEach((q, i) => { ctx.textAlign = "right"; ctx.textBaseline = "middle";
                              ctx.fillText(q, left - 4, top + cell * (i + 0.5)); });
  keys.forEach((k, j) => { ctx.save(); ctx.translate(left + cell * (j + 0.5), top - 4);
                           ctx.rotate(-Math.PI / 2); ctx.textAlign = "left"; ctx.textBaseline = "middle";
                           ctx.fillText(k, 0, 0); ctx.restore(); });
  map.forEach((row, i) => row.forEach((w, j) => {
    ctx.fillStyle = color(w); ctx.fillRect(left + cell * j, top + cell * i, cell, cell); }));
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect();
    const j = Math.floor((ev.clientX - r.left - left) / cell), i = Math.floor((ev.clientY - r.top - top) / cell);
    const tip = $("tip");
    if (i >= 0 && j >= 0 && i < queries.length && j < keys.length) {
      tip.textContent = queries[i] + " \u2192 " + keys[j] + ": " + map[i][j].toFixed(4);
      tip.style.left = (ev.clientX + 12) + "px"; tip.style.top = (ev.clientY + 12) + "px"; tip.style.display = "block";
    } else tip.style.display = "none";
  });
  canvas.addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
  const panel = document.createElement("div"); panel.className = "panel";
  const h = document.createElement("h3"); h.textContent = title;
  panel.appendChild(h); panel.appendChild(canvas);
  return panel;
}

function mean(maps) {
  return maps[0].map((row, i) => row.map((_, j) => maps.reduce((s, m) => s + m[i][j], 0) / maps.length));
}

function render() {
  const e = entries[+$("sentence").value], kind = $("kind").value, panels = $("panels");
  panels.innerHTML = "";
  if (!e) return;
  $("sentence-text").textContent = e.source + "  \u21d2  " + e.target;
  const maps = e[kind] || [];
  const queries = kind === "encoder_attention" ? e.encoder_tokens : e.decoder_tokens;
  const keys = kind === "decoder_attention" ? e.decoder_tokens : e.encoder_tokens;
  const lsel = $("layer").value, hsel = $("head").value;
  let count = 0;
  maps.forEach((layer, li) => {
    if (lsel !== "all" && +lsel !== li) return;
    const headName = (hi) => e.heads === "mean" ? "mean" : String(e.heads[hi]);
    const layerName = layerIds(e, kind)[li];
    if (hsel === "mean") { panels.appendChild(heatmap("layer " + layerName + ", mean of heads", mean(layer), queries, keys)); count++; return; }
    layer.forEach((map, hi) => {
      if (hsel !== "all" && +hsel !== hi) return;
      panels.appendChild(heatmap("layer " + layerName + ", head " + headName(hi), map, queries, keys)); count++;
    });
  });
  $("status").textContent = "rendered " + count + " maps of sentence " + e.index + " (" + entries.length + " in the dump)";
}

$("sentence").addEventListener("change", fillKinds);
$("kind").addEventListener("change", fillLayersAndHeads);
$("layer").addEventListener("change", render);
$("head").addEventListener("change", render);
$("file").addEventListener("change", (ev) => {
  const f = ev.target.files[0]; if (!f) return;
  f.text().then(load).catch((err) => { $("status").textContent = "cannot read " + f.name + ": " + err; });
});
const embedded = $("dump").textContent.trim();
if (embedded.length > 0) load(embedded);
</script>
</body>
</html>
)HTML";

}  // namespace

std::string attention_viewer_html(const std::string& dump) {
  // Inside the <script> element no "<" may occur (it could close the element
  // or open a comment); in JSON it only occurs inside strings, where the
  // escape \u003c means the same character.
  std::string safe;
  safe.reserve(dump.size());
  for (char c : dump) {
    if (c == '<')
      safe += "\\u003c";
    else
      safe += c;
  }
  std::string page = kPage;
  const std::string marker = "@DUMP@";
  page.replace(page.find(marker), marker.size(), safe);
  return page;
}

}  // namespace aiayn
