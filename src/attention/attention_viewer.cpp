// The attention viewer: one self-contained HTML page (inline CSS and JS, no
// network) that draws every selected map of a dump as a heatmap or as
// bertviz's head view. Served live (aiayn-attention --serve) it asks
// POST /v1/attention for each sentence typed, with head masks and alignment
// options, instead of reading a dump.
#include <string>

#include "src/attention/attention_job.h"

namespace aiayn {

namespace {

const char* kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>aiayn attention viewer</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
  header, form { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 12px; }
  label { display: flex; gap: 4px; align-items: center; }
  [hidden] { display: none !important; }
  #text { width: 32em; } #target { width: 20em; } #beam { width: 4em; }
  #result { margin: 4px 0 8px; } #result b { font-weight: 600; }
  #alignment { color: #555; font-size: 13px; }
  #masks { margin-bottom: 8px; font-size: 13px; }
  .mask-row { display: flex; gap: 2px; align-items: center; margin: 2px 0; }
  .mask-row span { width: 9em; }
  .mask-row input { margin: 0 2px; }
  #sentence-text { margin: 8px 0 12px; color: #444; }
  #panels { display: flex; flex-wrap: wrap; gap: 16px; }
  .panel h3 { margin: 0 0 4px; font-size: 13px; font-weight: 600; }
  canvas { border: 1px solid #ccc; }
  .swatches { display: flex; gap: 3px; margin-bottom: 4px; }
  .swatch { width: 16px; height: 16px; border-radius: 3px; cursor: pointer; font-size: 10px; color: #fff;
            text-align: center; line-height: 16px; }
  .swatch.off { opacity: 0.15; }
  svg.heads text { font: 12px sans-serif; cursor: default; }
  #tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 3px 6px;
         border-radius: 3px; font-size: 12px; display: none; }
  #status { color: #666; font-size: 12px; margin-top: 8px; }
</style>
</head>
<body>
<header>
  <strong id="title">aiayn attention viewer</strong>
  <label class="offline">dump <input type="file" id="file" accept=".jsonl,.json"></label>
  <label class="offline">sentence <select id="sentence"></select></label>
  <label>kind <select id="kind"></select></label>
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
  <label>view <select id="view"><option value="heatmaps">heatmaps</option>
    <option value="heads">head view</option></select></label>
</header>
<form id="live" hidden>
  <input id="text" placeholder="type a sentence and press Enter" autocomplete="off">
  <input id="target" placeholder="target to force-decode (optional)" autocomplete="off">
  <label>beam <input id="beam" type="number" min="1" max="64" value="1"></label>
  <label>alignment: layer <select id="alignment-layer"></select></label>
  <label>head <select id="alignment-head"></select></label>
  <button id="submit" type="submit">show attention</button>
</form>
<div id="result" hidden><b>translation</b> <span id="translation"></span>
  <div id="alignment"></div></div>
<details id="masks" hidden><summary>mask heads: a checked head's output and weights are zero
  (<span id="masked">none</span>)</summary><div id="mask-grid"></div></details>
<div id="sentence-text"></div>
<div id="panels"></div>
<div id="tip"></div>
<div id="status">no dump loaded: choose a .jsonl file written by aiayn-attention</div>
<script id="dump" type="text/plain">@DUMP@</script>
<script>
"use strict";
const LIVE = @LIVE@;  // served by aiayn-attention --serve: sentences go to POST /v1/attention
window.onerror = (message, source, line) => {
  document.getElementById("status").textContent = "JS error: " + message + " (line " + line + ")";
};
const KINDS = {encoder_attention: "encoder self-attention", decoder_attention: "decoder self-attention",
               cross_attention: "encoder-decoder attention"};
// One colour per head (the head view), as bertviz gives them.
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
let entries = [];
const hiddenHeads = new Set();  // head view: heads switched off by their swatch
const $ = (id) => document.getElementById(id);

function parseDump(text) {
  return text.split("\n").filter((l) => l.trim().length > 0).map((l) => JSON.parse(l));
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text; select.appendChild(o);
}

function load(text) { show(parseDump(text)); }

function show(list) {
  entries = list;
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

const measure = document.createElement("canvas").getContext("2d");
function textWidth(list, font) {
  measure.font = font + "px sans-serif";
  return list.reduce((m, t) => Math.max(m, measure.measureText(t).width), 0) + 6;
}

function panel(title, content) {
  const p = document.createElement("div"); p.className = "panel";
  const h = document.createElement("h3"); h.textContent = title;
  p.appendChild(h);
  for (const c of [].concat(content)) p.appendChild(c);
  return p;
}

function heatmap(title, map, queries, keys) {
  const cell = Math.max(8, Math.min(28, Math.floor(480 / Math.max(1, keys.length))));
  const font = Math.min(12, cell);
  const left = textWidth(queries, font), top = textWidth(keys, font);
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
  return panel(title, canvas);
}

// bertviz's head view: queries on the left, keys on the right, a line per
// pair in the head's colour with the weight as its opacity. Hovering a
// query keeps only its lines; a swatch switches its head off and on.
function svg(tag, attributes) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, v);
  return el;
}

function headView(title, heads, queries, keys) {  // heads: [{name, colour, map}]
  const row = 20, font = 12, gap = 150;
  const left = textWidth(queries, font), right = textWidth(keys, font);
  const height = row * Math.max(queries.length, keys.length) + 8;
  const view = svg("svg", {width: left + gap + right, height: height, class: "heads"});
  const y = (i) => 4 + row * (i + 0.5);
  heads.forEach((h) => {
    const group = svg("g", {"data-head": h.name});
    if (hiddenHeads.has(h.name)) group.style.display = "none";
    h.map.forEach((weights, i) => weights.forEach((w, j) => {
      if (w < 0.01) return;
      group.appendChild(svg("line", {x1: left, y1: y(i), x2: left + gap, y2: y(j), stroke: h.colour,
                                     "stroke-width": 2, "stroke-opacity": Math.min(1, w).toFixed(3),
                                     "data-query": i}));
    }));
    view.appendChild(group);
  });
  const focus = (i) => view.querySelectorAll("line").forEach((l) => {
    l.style.display = i === null || +l.dataset.query === i ? "" : "none"; });
  queries.forEach((q, i) => {
    const t = svg("text", {x: left - 4, y: y(i), "text-anchor": "end", "dominant-baseline": "middle"});
    t.textContent = q;
    t.addEventListener("mouseenter", () => focus(i));
    t.addEventListener("mouseleave", () => focus(null));
    view.appendChild(t);
  });
  keys.forEach((k, j) => {
    const t = svg("text", {x: left + gap + 4, y: y(j), "dominant-baseline": "middle"});
    t.textContent = k; view.appendChild(t);
  });
  const swatches = document.createElement("div"); swatches.className = "swatches";
  heads.forEach((h) => {
    const s = document.createElement("div");
    s.className = "swatch" + (hiddenHeads.has(h.name) ? " off" : "");
    s.style.background = h.colour; s.textContent = h.name === "mean" ? "\u03bc" : h.name;
    s.title = "head " + h.name + ": click to hide or show";
    s.addEventListener("click", () => {
      if (hiddenHeads.has(h.name)) hiddenHeads.delete(h.name); else hiddenHeads.add(h.name);
      render();
    });
    swatches.appendChild(s);
  });
  return panel(title, [swatches, view]);
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
  const lsel = $("layer").value, hsel = $("head").value, heads = $("view").value === "heads";
  const headName = (hi) => e.heads === "mean" ? "mean" : String(e.heads[hi]);
  let count = 0;
  maps.forEach((layer, li) => {
    if (lsel !== "all" && +lsel !== li) return;
    const layerName = layerIds(e, kind)[li];
    if (heads) {
      let chosen = layer.map((map, hi) => ({name: headName(hi), colour: COLOURS[hi % COLOURS.length], map}));
      if (hsel === "mean") chosen = [{name: "mean", colour: "#555", map: mean(layer)}];
      else if (hsel !== "all") chosen = [chosen[+hsel]];
      panels.appendChild(headView("layer " + layerName, chosen, queries, keys)); count += chosen.length;
      return;
    }
    if (hsel === "mean") { panels.appendChild(heatmap("layer " + layerName + ", mean of heads", mean(layer), queries, keys)); count++; return; }
    layer.forEach((map, hi) => {
      if (hsel !== "all" && +hsel !== hi) return;
      panels.appendChild(heatmap("layer " + layerName + ", head " + headName(hi), map, queries, keys)); count++;
    });
  });
  $("status").textContent = (heads ? "drew the lines of " + count + " heads" : "rendered " + count + " maps") +
      " of sentence " + e.index + (LIVE ? "" : " (" + entries.length + " in the dump)");
}

// Live: the model's shape from /v1/health gives the mask grid and the
// alignment choices; every change asks the server again.
function maskSpec() {
  return [...document.querySelectorAll("#mask-grid input:checked")].map((c) => c.dataset.head).join(",");
}

function buildLiveControls(health) {
  const grid = $("mask-grid"), stacks = [["enc", "encoder", health.encoder_layers],
      ["dec", "decoder self", health.decoder_layers], ["cross", "enc-dec", health.decoder_layers]];
  const preset = new Set((health.defaults.mask_heads || "").split(",").filter((s) => s.length > 0));
  for (const [kind, label, layers] of stacks) {
    for (let l = 0; l < layers; ++l) {
      const row = document.createElement("div"); row.className = "mask-row";
      const name = document.createElement("span"); name.textContent = label + " layer " + l;
      row.appendChild(name);
      for (let h = 0; h < health.heads; ++h) {
        const box = document.createElement("input"); box.type = "checkbox";
        box.dataset.head = kind + ":" + l + ":" + h; box.title = box.dataset.head;
        box.checked = preset.has(box.dataset.head);
        box.addEventListener("change", ask);
        row.appendChild(box);
      }
      grid.appendChild(row);
    }
  }
  const al = $("alignment-layer"), ah = $("alignment-head");
  option(al, -1, "penultimate");
  for (let l = 0; l < health.decoder_layers; ++l) option(al, l, String(l));
  option(ah, -1, "mean of heads");
  for (let h = 0; h < health.heads; ++h) option(ah, h, String(h));
  al.value = health.defaults.alignment_layer; ah.value = health.defaults.alignment_head;
  $("beam").value = health.defaults.beam;
  for (const id of ["alignment-layer", "alignment-head"]) $(id).addEventListener("change", ask);
}

function showAlignment(e) {
  const src = e.source.trim().split(/\s+/), tgt = e.target.trim().split(/\s+/);
  const links = e.alignment.split(" ").filter((p) => p.includes("-")).map((p) => p.split("-").map(Number));
  $("alignment").textContent = "alignment: " + (links.length === 0 ? "none" :
      links.map(([i, j]) => (src[i] || i) + " \u2192 " + (tgt[j] || j)).join(" \u00b7 "));
}

let asked = 0;
function ask(ev) {
  if (ev) ev.preventDefault();
  const text = $("text").value.trim();
  const spec = maskSpec();
  $("masked").textContent = spec.length > 0 ? spec : "none";
  if (text.length === 0) return;
  const body = {text, beam: +$("beam").value, mask_heads: spec,
                alignment_layer: +$("alignment-layer").value, alignment_head: +$("alignment-head").value};
  if ($("target").value.trim().length > 0) body.target = $("target").value.trim();
  const mine = ++asked;
  $("status").textContent = "asking the model\u2026";
  fetch("/v1/attention", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
    .then((r) => r.json().then((j) => ({ok: r.ok, j})))
    .then(({ok, j}) => {
      if (mine !== asked) return;  // a newer question was asked meanwhile
      if (!ok) { $("status").textContent = "error: " + j.error; return; }
      $("result").hidden = false;
      $("translation").textContent = j.target;
      showAlignment(j);
      show([j]);
      if (j.warnings) $("status").textContent += "; " + j.warnings.join("; ");
    })
    .catch((err) => { $("status").textContent = "no answer from the server: " + err; });
}

$("sentence").addEventListener("change", fillKinds);
$("kind").addEventListener("change", fillLayersAndHeads);
for (const id of ["layer", "head", "view"]) $(id).addEventListener("change", render);
$("file").addEventListener("change", (ev) => {
  const f = ev.target.files[0]; if (!f) return;
  f.text().then(load).catch((err) => { $("status").textContent = "cannot read " + f.name + ": " + err; });
});
if (LIVE) {
  document.title = "aiayn attention explorer";
  $("title").textContent = "aiayn attention explorer";
  document.querySelectorAll(".offline").forEach((el) => { el.hidden = true; });
  $("live").hidden = false; $("masks").hidden = false;
  $("live").addEventListener("submit", ask);
  $("status").textContent = "type a sentence";
  fetch("/v1/health").then((r) => r.json()).then((health) => {
    buildLiveControls(health);
    $("status").textContent = "type a sentence: " + health.model + " (" + health.encoder_layers + "+" +
        health.decoder_layers + " layers, " + health.heads + " heads)";
  }).catch((err) => { $("status").textContent = "no answer from the server: " + err; });
} else {
  const embedded = $("dump").textContent.trim();
  if (embedded.length > 0) load(embedded);
}
</script>
</body>
</html>
)HTML";

std::string page_with(const std::string& dump, bool live) {
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
  // The flag first: the dump, set in after it, may contain anything.
  std::string page = kPage;
  const std::string live_marker = "@LIVE@", dump_marker = "@DUMP@";
  page.replace(page.find(live_marker), live_marker.size(), live ? "true" : "false");
  page.replace(page.find(dump_marker), dump_marker.size(), safe);
  return page;
}

}  // namespace

std::string attention_viewer_html(const std::string& dump) { return page_with(dump, false); }

std::string attention_explorer_html() { return page_with("", true); }

}  // namespace aiayn
