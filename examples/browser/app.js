// The example page's script: plain browser ESM, loading the client as built by `npm run build`
// (dist/client is the `tessera/client` export; with a bundler, import "tessera/client").
import { createClient, JobFailureError } from "../../dist/client/index.js";

const $ = (selector, root = document) => root.querySelector(selector);
const params = new URLSearchParams(location.search);
$("#server").value = params.get("server") ?? "http://127.0.0.1:3000";

// The page stays live while jobs run: waits are promises, never loops that block.
const pageStart = performance.now();
setInterval(
  () => ($("#clock").textContent = `${((performance.now() - pageStart) / 1000).toFixed(1)} s`),
  100,
);

$("#submit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const client = createClient({ baseUrl: form.get("server"), apiKey: form.get("apiKey") || undefined });
  const ms = Number(form.get("ms"));
  const type = form.get("type");
  const input = type === "demo.fail" ? { message: "failed on purpose", ms, status: 422 } : { ms };
  void follow(client, type, input);
});

/** One job: a card that shows its progress, a Cancel button, and the result or the problem. */
async function follow(client, type, input) {
  const card = $("#job-template").content.firstElementChild.cloneNode(true);
  $("#jobs").prepend(card);
  $(".type", card).textContent = type;
  const show = (job) => {
    $(".status", card).textContent = job.status.replace("_", " ");
    $(".status", card).className = `status ${job.status}`;
    const percent = job.progress?.percent;
    if (typeof percent === "number") $("progress", card).value = percent;
    $(".message", card).textContent = job.progress?.message ?? "\u00a0";
  };
  const started = performance.now();
  const ticker = setInterval(
    () => ($(".elapsed", card).textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`),
    100,
  );
  const cancel = $(".cancel", card);
  try {
    const job = await client.submit(type, input);
    card.dataset.jobId = job.id;
    $(".id", card).textContent = job.id;
    show(job.job);
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        show(await job.cancel()); // the pending result() below then rejects with JobCanceledError
      } catch (error) {
        cancel.disabled = false;
        $(".message", card).textContent = error.message;
      }
    });
    const result = await job.result({ onProgress: show });
    show({ status: "succeeded", progress: { percent: 100, message: "done" } });
    $(".result", card).textContent = JSON.stringify(result, null, 2);
  } catch (error) {
    if (error instanceof JobFailureError) {
      show({ status: error.jobStatus, progress: null });
      $("progress", card).value = $("progress", card).value; // a definite bar: the job is over
      $(".result", card).textContent = `${error.problem.title}: ${error.problem.detail}`;
    } else {
      $(".status", card).textContent = "error";
      $(".result", card).textContent = String(error.message ?? error);
    }
  } finally {
    clearInterval(ticker);
    cancel.disabled = true;
    card.dataset.done = "true";
  }
}
