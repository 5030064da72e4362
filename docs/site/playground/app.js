// The playground: unetviz (its wheel, in Pyodide) traces the config; Graphviz (WebAssembly) draws the DOT it
// writes. Everything is loaded from this folder (vendor/, built by `make playground`); the state is the URL's hash.
import { loadPyodide } from "./vendor/pyodide/pyodide.mjs";

const $ = (id) => document.getElementById(id);
const T0 = performance.now();
const timing = { firstShown: null, last: null };
window.__uv = { timing, runs: 0 };
let bridge = null, viz = null, presets = {};
const state = { preset: "sd15", config: null, size: "", detail: "units" };

function status(text) { $("status").textContent = text; }
function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }
function num(x) { return Number(x).toLocaleString("en-US"); }
function macs(x) { return x >= 1e9 ? `${(x / 1e9).toFixed(1)} G` : x >= 1e6 ? `${(x / 1e6).toFixed(1)} M` : num(x); }
function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

// --- the URL: #preset=sd15&set={"layers_per_block":3}&del=a,b&size=512px&detail=blocks -----------------------
function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  const preset = presets[q.get("preset")] ? q.get("preset") : "sd15";
  const config = structuredClone(presets[preset]);
  try { Object.assign(config, JSON.parse(q.get("set") || "{}")); } catch { /* a mangled link: the preset */ }
  for (const k of (q.get("del") || "").split(",").filter(Boolean)) delete config[k];
  return { preset, config, size: q.get("size") || "", detail: q.get("detail") === "blocks" ? "blocks" : "units" };
}

function writeHash() {
  const base = presets[state.preset], set = {}, del = [];
  for (const [k, v] of Object.entries(state.config)) if (!same(base[k], v)) set[k] = v;
  for (const k of Object.keys(base)) if (!(k in state.config)) del.push(k);
  const q = new URLSearchParams({ preset: state.preset });
  if (Object.keys(set).length) q.set("set", JSON.stringify(set));
  if (del.length) q.set("del", del.join(","));
  if (state.size) q.set("size", state.size);
  if (state.detail !== "units") q.set("detail", state.detail);
  const hash = "#" + q.toString();
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// --- tracing ----------------------------------------------------------------------------------------------------
function trace({ levels = 0, fromJson = false } = {}) {
  const t = performance.now();
  const answer = JSON.parse(bridge.run(JSON.stringify(state.config), state.preset, state.size, state.detail, levels));
  const py = performance.now() - t;
  if (answer.error) {
    showError(answer.error);
    if (answer.controls) controls(answer.controls);  // the fields of the preset's keys, the bad value in its field
    if (!fromJson) $("json").value = pretty(state.config);
    if (!$("knobs").children.length) $("json-box").open = true;  // nothing traced yet: the JSON is what to fix
    writeHash();
    return;
  }
  state.config = answer.config;
  showError("");
  const d = performance.now();
  draw(answer.view);
  const shown = performance.now();
  timing.last = { python: py, draw: shown - d, total: shown - t };
  if (timing.firstShown === null) timing.firstShown = shown;
  window.__uv.runs += 1;
  document.body.dataset.runs = String(window.__uv.runs);
  controls(answer.controls);
  if (!fromJson) $("json").value = pretty(state.config);
  $("size").placeholder = `${answer.view.size} (the config's own)`;
  writeHash();
  status(`traced in ${py.toFixed(0)} ms, drawn in ${(shown - d).toFixed(0)} ms`);
}

// a key a line, each value on its line (nested objects too), as a config is written by hand
function pretty(value, indent = "") {
  if (Array.isArray(value)) return `[${value.map((v) => pretty(v, indent)).join(", ")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const inner = indent + "  ";
  const items = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`);
  return items.length ? `{\n${items.join(",\n")}\n${indent}}` : "{}";
}

function showError(message) {
  for (const id of ["error", "side-error"]) {
    $(id).hidden = !message;
    $(id).textContent = message ? `error: ${message}` : "";
  }
  for (const id of ["figures", "failure", "diagram", "concats", "skips"]) $(id).classList.toggle("stale", !!message);
}

function draw(v) {
  const io = v.output ? `${esc(v.input)} → ${esc(v.output)}` : `${esc(v.input)} → (fails)`;
  $("figures").innerHTML = `<b>${esc(v.preset || v.model)}</b> · ${esc(v.family)} ${esc(v.model)} · ${io} · `
    + `<b id="params">${num(v.params)}</b> params · <b id="macs" title="${num(v.macs)}">${macs(v.macs)}</b>MACs · `
    + `${v.skips.length} skips · ${v.concats.length} concats · ${v.units} units`;
  $("failure").hidden = !v.error;
  $("failure").innerHTML = v.error ? `<b>fails${v.error.at ? ` at <code>${esc(v.error.at)}</code>` : ""}:</b> `
    + esc(v.error.message) : "";
  const svg = viz.renderSVGElement(v.dot);
  svg.style.maxWidth = svg.getAttribute("width");  // fit the width, never larger than Graphviz drew it
  $("diagram").replaceChildren(svg);
  $("concats").innerHTML = "<tr><th class='r'>#</th><th>channels</th><th class='r'>size</th>"
    + "<th>consumer <span class='sub'>and its operands</span></th></tr>" + v.concats.map((c, i) => "<tr>"
    + `<td class='r'>${i}</td><td class='sum'>${esc(c.sum)}</td><td class='r'>${esc(c.size)}</td>`
    + `<td class='path'>${esc(c.consumer)}<div class='why'>${esc(c.terms)}</div></td></tr>`).join("");
  $("skips").innerHTML = "<tr><th class='r'>#</th><th>pushed by</th><th class='r'>ch</th><th class='r'>size</th>"
    + "<th>popped by</th></tr>" + v.skips.map((s) => `<tr><td class='r'>${s.index}</td><td>${esc(s.unit)}</td>`
    + `<td class='r'>${s.channels}</td><td class='r'>${esc(s.size)}</td><td>${esc(s.to ?? "(never popped)")}</td>`
    + "</tr>").join("");
}

// --- controls -----------------------------------------------------------------------------------------------------
function show(value) {
  if (!Array.isArray(value)) return String(value);
  return value.some((x) => Array.isArray(x)) ? pretty(value) : value.join(", ");
}

function token(s) {
  s = s.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  if (s === "true" || s === "false" || s === "null") return JSON.parse(s);
  return s.replace(/^["']|["']$/g, "");
}

function parse(text, old) {
  const s = text.trim();
  if (s.startsWith("[") || s.startsWith("{")) { try { return JSON.parse(s); } catch { return s; } }
  if (Array.isArray(old) || s.includes(",")) return s.split(",").filter((x) => x.trim()).map(token);
  return token(s);
}

function setKey(config, key, value) {
  const parts = key.split("."), last = parts.pop();
  let node = config;
  for (const p of parts) node = node[p] = node[p] ?? {};
  node[last] = value;
}

function controls(c) {
  $("levels").value = c.levels ?? "";
  $("levels").disabled = c.levels == null;
  const box = $("knobs"), have = new Set();
  for (const k of c.knobs) {
    have.add(k.key);
    let input = box.querySelector(`textarea[data-key="${k.key}"]`);
    if (!input) {
      const row = document.createElement("div");
      row.className = "row";
      row.innerHTML = `<label for="k-${esc(k.key)}" title="${esc(k.key)}">${esc(k.label)}</label>`
        + `<textarea id="k-${esc(k.key)}" data-key="${esc(k.key)}" rows="1" spellcheck="false"></textarea>`;
      box.append(row);
      input = row.querySelector("textarea");
      // one line that grows to show a long list whole; Enter applies the value, as in a one-line field
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { e.preventDefault(); input.dispatchEvent(new Event("change")); }
      });
      input.addEventListener("input", () => fit(input));
      input.addEventListener("input", () => later(() => knob(input)));
      input.addEventListener("change", () => knob(input));
    }
    if (document.activeElement !== input) input.value = show(k.value);
    fit(input);
    input.title = `${k.key}${k.given ? "" : " (the default)"}`;
    input.classList.toggle("default", !k.given);
    input.dataset.value = JSON.stringify(k.value);
  }
  for (const input of box.querySelectorAll("textarea")) if (!have.has(input.dataset.key)) input.parentElement.remove();
}

function fit(area) {
  area.style.height = "auto";
  area.style.height = `${area.scrollHeight + 2}px`;
}

function knob(input) {
  const old = JSON.parse(input.dataset.value);
  const value = parse(input.value, old);
  if (same(value, old) && $("error").hidden) return;
  setKey(state.config, input.dataset.key, value);
  trace();
}

let timer = null;
function later(f) { clearTimeout(timer); timer = setTimeout(f, 350); }

function fromJson() {
  let config;
  try { config = JSON.parse($("json").value); } catch (e) { showError(`config: not valid JSON (${e.message})`); return; }
  if (same(config, state.config) && $("error").hidden) return;
  state.config = config;
  trace({ fromJson: true });
}

function load(s) {
  Object.assign(state, s);
  $("preset").value = state.preset;
  $("size").value = state.size;
  $("detail").value = state.detail;
  $("knobs").replaceChildren();
  trace();
}

function wire() {
  $("preset").innerHTML = Object.keys(presets).map((n) => `<option>${esc(n)}</option>`).join("");
  $("preset").addEventListener("change", () => load({ preset: $("preset").value,
    config: structuredClone(presets[$("preset").value]), size: "" }));
  $("size").addEventListener("input", () => later(() => { state.size = $("size").value.trim(); trace(); }));
  $("size").addEventListener("change", () => { state.size = $("size").value.trim(); trace(); });
  $("levels").addEventListener("change", () => { const n = Number($("levels").value); if (n) trace({ levels: n }); });
  $("detail").addEventListener("change", () => { state.detail = $("detail").value; trace(); });
  $("json").addEventListener("input", () => later(fromJson));
  $("diagram").addEventListener("click", () => $("diagram").classList.toggle("natural"));
  window.addEventListener("hashchange", () => load(readHash()));
}

// --- start: Graphviz and Python load side by side ---------------------------------------------------------------
async function start() {
  if (matchMedia("(max-width: 760px)").matches) $("json-box").open = false;  // a phone: the U first
  const here = new URL(".", location.href).href;
  const phases = timing.phases = {};
  const pyReady = loadPyodide({ indexURL: `${here}vendor/pyodide/`, packages: [] });  // first: it takes longest
  const vizReady = import("./vendor/viz/viz.js").then((m) => m.instance());
  const py = await pyReady;
  phases.pyodide = performance.now();
  const listed = await (await fetch("vendor/wheels.json")).json();
  const site = py.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
  const files = await Promise.all([...listed.wheels.map((n) => `vendor/wheels/${n}`), `vendor/${listed.bytecode}`]
    .map(async (url) => (await fetch(url)).arrayBuffer()));
  // the wheels, then their bytecode (compiled at build time by this same CPython): imports compile nothing
  files.forEach((data, i) => py.unpackArchive(data, i < listed.wheels.length ? "wheel" : "zip", { extractDir: site }));
  phases.wheels = performance.now();
  py.FS.writeFile("/home/pyodide/bridge.py", await (await fetch("bridge.py")).text());
  py.runPython("import sys; sys.path.insert(0, '/home/pyodide')");
  bridge = py.pyimport("bridge");
  presets = JSON.parse(bridge.presets());
  phases.imported = performance.now();
  viz = await vizReady;
  phases.viz = performance.now();
  wire();
  load(readHash());
  document.body.dataset.state = "ready";
  timing.loaded = performance.now() - T0;
  status(`ready in ${((timing.firstShown ?? performance.now()) / 1000).toFixed(1)} s`
    + ` (Pyodide ${listed.npm.pyodide}, Viz.js ${listed.npm["@viz-js/viz"]})`);
  // for benchmarks/bench_playground.py: a fresh trace (no cached result) of a preset, timed in the page
  window.__uvRetrace = async (name) => {
    bridge.clear();
    const t = performance.now();
    load({ preset: name, config: structuredClone(presets[name]), size: "" });
    const total = performance.now() - t;
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));  // laid out, painted
    return { ...timing.last, total, painted: performance.now() - t };
  };
}

start().catch((e) => {
  document.body.dataset.state = "failed";
  const served = location.protocol === "file:"
    ? " (browsers load WebAssembly only over HTTP: serve the site, e.g. python -m http.server -d docs/_build/html)" : "";
  showError(`the playground could not start: ${e.message || e}${served}`);
  status("failed");
});
