// The page of `leanformers serve`: a streaming chat for generative models, a form per pipeline task otherwise.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("leanformers-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("leanformers-key", keyInput.value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h.Authorization = "Bearer " + keyInput.value;
  return h;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? { headers: headers() }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// ------------------------------------------------------------------ chat
const history = [];
let controller = null;

function bubble(role, text) {
  const node = el("div", { class: "msg " + role, text });
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

async function sendChat(event) {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  history.push({ role: "user", content: text });
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.dataset.done = "0";
  const system = $("system").value.trim();
  const messages = (system ? [{ role: "system", content: system }] : []).concat(history);
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, temperature: Number($("temperature").value),
                             max_tokens: Number($("max-tokens").value) }),
    });
    if (!response.ok) throw new Error((await response.json()).error.message);
    await readEvents(response, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
    });
    history.push({ role: "assistant", content: answer.textContent });
  } catch (err) {
    if (err.name !== "AbortError") { answer.classList.add("error"); answer.textContent += " [" + err.message + "]"; }
  } finally {
    answer.dataset.done = "1";
    controller = null;
    $("send").disabled = false; $("stop").disabled = true;
  }
}

async function readEvents(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return;
      onChunk(JSON.parse(data));
    }
  }
}

$("chat-form").addEventListener("submit", sendChat);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("clear").addEventListener("click", () => { history.length = 0; $("messages").replaceChildren(); });

// ------------------------------------------------------------------ pipeline tasks
function bars(items) {
  const top = Math.max(...items.map((i) => i.score), 1e-9);
  return el("div", {}, ...items.map((item) => el("div", { class: "bar" },
    el("span", { text: item.label }),
    el("div", { class: "fill", style: `width:${(100 * item.score / top).toFixed(1)}%` }),
    el("span", { text: item.score.toFixed(4) }))));
}

function highlighted(text, spans, labelOf) {
  const node = el("p", { class: "text" });
  let at = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.start < at) continue;
    node.append(text.slice(at, span.start));
    const mark = el("mark", {}, text.slice(span.start, span.end));
    const label = labelOf(span);
    if (label) mark.append(el("small", { text: label }));
    node.append(mark);
    at = span.end;
  }
  node.append(text.slice(at));
  return node;
}

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

const TASKS = {
  "fill-mask": {
    fields: [["text", "textarea", "Paris is the [MASK] of France."]],
    run: (v) => api("/v1/pipeline/fill-mask", { inputs: v.text, parameters: { top_k: 5 } }),
    show: (r) => bars(r.result.map((p) => ({ label: p.token_str, score: p.score }))),
  },
  "token-classification": {
    fields: [["text", "textarea", "My name is Sylvain and I work at Hugging Face in Brooklyn."]],
    run: (v) => api("/v1/pipeline/token-classification",
                    { inputs: v.text, parameters: { aggregation_strategy: "simple" } }),
    show: (r, v) => highlighted(v.text, r.result, (e) => `${e.entity_group || e.entity} ${e.score.toFixed(2)}`),
  },
  "question-answering": {
    fields: [["question", "input", "Where do I work?"],
             ["context", "textarea", "My name is Sylvain and I work at Hugging Face in Brooklyn."]],
    run: (v) => api("/v1/pipeline/question-answering", { inputs: { question: v.question, context: v.context } }),
    show: (r, v) => {
      const answer = Array.isArray(r.result) ? r.result[0] : r.result;
      return el("div", {}, highlighted(v.context, [answer], () => answer.score.toFixed(3)),
                el("p", { text: "Answer: " + answer.answer }));
    },
  },
  "text-classification": {
    fields: [["text", "textarea", "I love this movie!"]],
    run: (v) => api("/v1/pipeline/text-classification", { inputs: v.text, parameters: { top_k: null } }),
    show: (r) => bars((Array.isArray(r.result[0]) ? r.result[0] : r.result).map((p) => ({ label: p.label,
                                                                                        score: p.score }))),
  },
  "zero-shot-classification": {
    fields: [["text", "textarea", "The team won the final match."], ["labels", "input", "sports, politics, cooking"]],
    run: (v) => api("/v1/pipeline/zero-shot-classification",
                    { inputs: v.text, parameters: { candidate_labels: v.labels } }),
    show: (r) => bars(r.result.labels.map((label, i) => ({ label, score: r.result.scores[i] }))),
  },
  "summarization": {
    fields: [["text", "textarea", "A long document talks about many things, and the summary keeps only what matters."]],
    run: (v) => api("/v1/pipeline/summarization", { inputs: v.text }),
    show: (r) => el("p", { class: "text", text: r.result[0].summary_text }),
  },
  "translation": {
    fields: [["text", "textarea", "The cat sat on the mat."]],
    run: (v) => api("/v1/pipeline/translation", { inputs: v.text }),
    show: (r) => el("p", { class: "text", text: r.result[0].translation_text }),
  },
  "text2text-generation": {
    fields: [["text", "textarea", "Paris is the capital of France."]],
    run: (v) => api("/v1/pipeline/text2text-generation", { inputs: v.text }),
    show: (r) => el("p", { class: "text", text: r.result[0].generated_text }),
  },
  "feature-extraction": {
    fields: [["text", "textarea", "A cat sits on the mat.\nA kitten rests on a rug.\nStocks fell sharply today."]],
    run: async (v) => {
      const lines = v.text.split("\n").map((s) => s.trim()).filter(Boolean);
      return { lines, data: (await api("/v1/embeddings", { input: lines })).data.map((d) => d.embedding) };
    },
    show: (r) => el("table", {},
      el("tr", {}, el("th", {}), ...r.lines.map((_, j) => el("th", { text: String(j + 1) }))),
      ...r.lines.map((line, i) => el("tr", {}, el("td", { class: "text", text: `${i + 1}. ${line}` }),
        ...r.data.map((b) => el("td", { text: cosine(r.data[i], b).toFixed(3) }))))),
  },
};

function taskForm(task) {
  const spec = TASKS[task];
  const form = el("form", { class: "task", id: "form-" + task, hidden: "" });
  const inputs = {};
  for (const [name, kind, value] of spec.fields) {
    const input = el(kind, { id: `${task}-${name}`, name });
    if (kind === "textarea") input.rows = 3;
    input.value = value;
    inputs[name] = input;
    form.append(el("label", {}, name[0].toUpperCase() + name.slice(1), input));
  }
  const result = el("div", { class: "result", id: "result-" + task });
  form.append(el("div", { class: "row" }, el("button", { type: "submit", text: "Run" })), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value]));
    result.dataset.done = "0";
    result.replaceChildren(el("p", { text: "…" }));
    try {
      result.replaceChildren(spec.show(await spec.run(values), values));
    } catch (err) {
      result.replaceChildren(el("p", { class: "error", text: err.message }));
    }
    result.dataset.done = "1";
  });
  return form;
}

function showTasks(tasks) {
  const known = tasks.filter((t) => TASKS[t]);
  const tabs = $("task-tabs");
  for (const task of known) {
    $("task-forms").append(taskForm(task));
    const tab = el("button", { type: "button", id: "tab-" + task, text: task });
    tab.addEventListener("click", () => {
      for (const t of known) {
        $("form-" + t).hidden = t !== task;
        $("tab-" + t).classList.toggle("active", t === task);
      }
    });
    tabs.append(tab);
  }
  if (known.length) $("tab-" + known[0]).click();
  $("tasks").hidden = false;
}

async function start() {
  try {
    const info = await api("/v1/info");
    $("model-name").textContent = info.model;
    $("status").textContent = info.generative
      ? `Chat with ${info.model} (context ${info.max_context} tokens).` : `Tasks of ${info.model}.`;
    if (info.generative) $("chat").hidden = false; else showTasks(info.tasks);
    document.body.dataset.ready = "1";
  } catch (err) {
    $("status").textContent = "Cannot reach the server: " + err.message + " (an API key may be needed).";
    $("status").className = "error";
  }
}

keyInput.addEventListener("change", () => { if (!document.body.dataset.ready) start(); });
start();
