// The matcalc page: the form <-> the URL's query <-> POST /api/derive -> the sections.
//
// The page's whole state is its URL's query (expr, derive, wrt, shape, domain, size, seed: the
// command line's flags), so a link reproduces a derivation. The server answers with the
// canonical query, which replaces the address shown. Markup from the server (MathML, the
// step-by-step note) is parsed with DOMParser, so nothing in it runs; everything else is set as
// text.
"use strict";

const DOMAINS = ["real", "positive", "spd", "invertible", "probability", "probability_rows",
                 "symmetric", "binary", "sign"];
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// The variables table
// ---------------------------------------------------------------------------------------------

function cell(row, child) {
  const td = document.createElement("td");
  td.append(child);
  row.append(td);
  return child;
}

function input(cls, label, value, placeholder) {
  const el = document.createElement("input");
  el.className = cls;
  el.value = value;
  el.spellcheck = false;
  el.setAttribute("aria-label", label);
  if (placeholder) el.placeholder = placeholder;
  return el;
}

function addVariable(name = "", dims = "", domain = "real", wrt = false) {
  const row = document.createElement("tr");
  cell(row, input("var-name", "name", name, "W"));
  cell(row, input("var-shape", "shape", dims, "n,d"));
  const select = cell(row, document.createElement("select"));
  select.className = "var-domain";
  select.setAttribute("aria-label", "domain");
  for (const d of DOMAINS) select.append(new Option(d, d, false, d === domain));
  if (!DOMAINS.includes(domain)) select.append(new Option(domain, domain, true, true));
  const box = cell(row, document.createElement("input"));
  box.type = "checkbox";
  box.className = "var-wrt";
  box.checked = wrt;
  box.setAttribute("aria-label", "differentiate by this variable");
  const remove = cell(row, document.createElement("button"));
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = "×";
  remove.title = "remove this variable";
  remove.setAttribute("aria-label", "remove this variable");
  remove.addEventListener("click", () => row.remove());
  $("variables").tBodies[0].append(row);
  return row;
}

function variableRows() {
  return [...$("variables").tBodies[0].rows].map((row) => ({
    name: row.querySelector(".var-name").value.trim(),
    dims: row.querySelector(".var-shape").value.trim(),
    domain: row.querySelector(".var-domain").value,
    wrt: row.querySelector(".var-wrt").checked,
  })).filter((v) => v.name !== "");
}

// ---------------------------------------------------------------------------------------------
// Form <-> parameters (the URL's query)
// ---------------------------------------------------------------------------------------------

function formParams() {
  const params = new URLSearchParams();
  params.append("expr", $("expr").value);
  const kind = document.querySelector("input[name=derive]:checked").value;
  if (kind !== "grad") params.append("derive", kind);
  const rows = variableRows();
  for (const v of rows) if (v.wrt) params.append("wrt", v.name);
  for (const v of rows) params.append("shape", `${v.name}=${v.dims}`);
  for (const v of rows) if (v.domain !== "real") params.append("domain", `${v.name}=${v.domain}`);
  for (const part of $("sizes").value.split(/[\s;]+/)) if (part) params.append("size", part);
  const seed = $("seed").value.trim();
  if (seed && seed !== "0") params.append("seed", seed);
  return params;
}

function fillForm(params) {
  $("expr").value = params.get("expr") ?? "";
  const kind = params.get("derive") || "grad";
  for (const radio of document.querySelectorAll("input[name=derive]")) {
    radio.checked = radio.value === kind;
  }
  const wrt = params.getAll("wrt").flatMap((w) => w.split(",")).map((w) => w.trim());
  const domains = new Map(params.getAll("domain").map(splitPair));
  $("variables").tBodies[0].replaceChildren();
  const named = new Set();
  for (const [name, dims] of params.getAll("shape").map(splitPair)) {
    addVariable(name, dims, domains.get(name) || "real", wrt.includes(name));
    named.add(name);
  }
  for (const name of [...wrt, ...domains.keys()]) {
    if (name && !named.has(name)) {
      addVariable(name, "", domains.get(name) || "real", wrt.includes(name));
      named.add(name);
    }
  }
  if (named.size === 0) addVariable();
  $("sizes").value = params.getAll("size").join(",");
  $("seed").value = params.get("seed") || "0";
}

function splitPair(spec) {
  const at = spec.indexOf("=");
  return at < 0 ? [spec.trim(), ""] : [spec.slice(0, at).trim(), spec.slice(at + 1).trim()];
}

function asObject(params) {
  const out = {};
  for (const [key, value] of params) (out[key] ??= []).push(value);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Deriving
// ---------------------------------------------------------------------------------------------

let latest = 0;              // answers to older requests are dropped

async function derive(params, how) {
  const ticket = ++latest;
  $("status").textContent = "deriving…";
  $("derive").disabled = true;
  let page;
  try {
    const answer = await fetch("/api/derive", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(asObject(params)),
    });
    page = await answer.json();
  } catch (err) {
    page = { ok: false, error: `no answer from the server (${err.message}); is matcalc serve still running?` };
  }
  if (ticket !== latest) return;
  $("derive").disabled = false;
  $("status").textContent = "";
  if (page.query !== undefined) remember(page.query, how);
  if (!page.ok) return showError(page.error);
  show(page);
}

// The server reads request lines of up to 64 KiB: a longer address could not be loaded again.
const MAX_ADDRESS = 60000;

function remember(query, how) {
  const url = `${location.pathname}?${query}`;
  if (url.length > MAX_ADDRESS) {
    $("permalink").removeAttribute("href");
    $("permalink").textContent = "(too long to keep in the address)";
    return;
  }
  if (how === "push" && url !== location.pathname + location.search) {
    history.pushState(null, "", url);
  } else if (how !== "none") {
    history.replaceState(null, "", url);
  }
  $("permalink").href = location.href;
  $("permalink").textContent = location.href.length > 90 ? location.href.slice(0, 89) + "…" : location.href;
}

function showError(message) {
  $("output").hidden = true;
  $("error").hidden = false;
  $("error-text").textContent = `error: ${message}`;
}

function parsed(markup) {
  // Markup from the server, parsed as a separate document: its scripts (there are none) would
  // not run, and the page's policy forbids inline ones anyway.
  const doc = new DOMParser().parseFromString(`<body>${markup}</body>`, "text/html");
  return [...doc.body.childNodes];
}

function show(page) {
  $("error").hidden = true;
  $("output").hidden = false;
  $("title").textContent = page.title[0].toUpperCase() + page.title.slice(1);
  $("equations").replaceChildren(...page.result.mathml.flatMap(parsed));
  $("result-text").textContent = page.result.text;

  const check = page.check;
  const verdict = $("verdict");
  verdict.className = "verdict";
  if (check.error) {
    verdict.textContent = "not checked";
    verdict.classList.add("unchecked");
    $("check-report").textContent = `error: ${check.error}`;
  } else {
    const worst = check.worst === null ? "not finite" : check.worst.toExponential(2);
    verdict.textContent = `${check.verdict}: worst relative error ${worst}`;
    verdict.classList.add(check.ok ? "passed" : "failed");
    $("check-report").textContent = check.report;
  }

  $("code-text").textContent = page.code.error ? `# error: ${page.code.error}` : page.code.source;
  $("copy-code").disabled = Boolean(page.code.error);
  link("download-py", page.downloads.python);

  const steps = page.steps;
  $("steps-error").hidden = !steps.error;
  $("steps-error").textContent = steps.error ? `error: ${steps.error}` : "";
  $("steps-body").replaceChildren(...(steps.error ? [] : parsed(steps.html)));

  for (const fmt of ["latex", "markdown", "html"]) link(`download-${fmt}`, page.downloads[fmt]);
  $("notes-error").hidden = !page.notes_error;
  $("notes-error").textContent = page.notes_error ? `error: ${page.notes_error}` : "";
}

function link(id, href) {
  const a = $(id);
  a.hidden = !href;
  if (href) a.href = href;
}

// ---------------------------------------------------------------------------------------------
// Tools: copy, expand, examples
// ---------------------------------------------------------------------------------------------

async function copyCode() {
  const text = $("code-text").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();              // the fallback: select it for the user
    range.selectNodeContents($("code-text"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copy-status").textContent = "selected: press Ctrl-C to copy";
    return;
  }
  $("copy-status").textContent = "copied";
  setTimeout(() => { $("copy-status").textContent = ""; }, 2000);
}

function setOpen(open) {
  for (const block of $("steps-body").querySelectorAll("details")) block.open = open;
}

async function loadExamples() {
  let examples = [];
  try {
    examples = (await (await fetch("/api/examples")).json()).examples;
  } catch {
    return;
  }
  const select = $("examples");
  const groups = new Map();
  for (const ex of examples) {
    if (!groups.has(ex.group)) {
      const group = document.createElement("optgroup");
      group.label = ex.group;
      groups.set(ex.group, group);
      select.append(group);
    }
    groups.get(ex.group).append(new Option(ex.title, ex.query));
  }
}

function start() {
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    derive(formParams(), "push");
  });
  $("expr").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("form").requestSubmit();
    }
  });
  $("add-variable").addEventListener("click", () => addVariable().querySelector("input").focus());
  $("copy-code").addEventListener("click", copyCode);
  $("expand-all").addEventListener("click", () => setOpen(true));
  $("collapse-all").addEventListener("click", () => setOpen(false));
  $("examples").addEventListener("change", (event) => {
    const query = event.target.value;
    if (!query) return;
    const params = new URLSearchParams(query);
    fillForm(params);
    derive(params, "push");
  });
  window.addEventListener("popstate", () => {
    const params = new URLSearchParams(location.search);
    fillForm(params);
    if (params.has("expr")) derive(params, "none");
  });
  loadExamples();
  const params = new URLSearchParams(location.search);
  fillForm(params);
  if (params.has("expr")) derive(params, "replace");
}

start();
