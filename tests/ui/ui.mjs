// Rabble's web UI in a real browser (Debian's chromium, driven by playwright-core), run by
// tests/e2e/ui.rs against a real hub and real agents. It logs in with a token, watches a
// node die without reloading, plans (diff shown) and runs a job, reads an allocation's live
// logs, has a stale KV save refused, and checks that a read-only token is offered no stop
// and that the API refuses a forged one. Screenshots go to $SHOTS.
//
// Env: HUB (http://127.0.0.1:port), ROOT and READ (token secrets), KILL_PID (an agent to
// kill), KILL_NODE (its node), JOB (a job file whose count the test raises), SHOTS (dir).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { HUB, ROOT, READ, KILL_PID, KILL_NODE, JOB, SHOTS } = process.env;
const step = (s) => console.log("ui: " + s);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "dark" });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { throw new Error("a script error on the page: " + e); });
  const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

  // Login: a wrong token is refused, the right one opens the overview.
  await page.goto(HUB + "/ui/login");
  await page.fill("#token", "not-a-token");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("body"), /not known to this hub/);
  await page.fill("#token", ROOT);
  await page.click("button[type=submit]");
  await page.waitForURL(HUB + "/ui/");
  await page.waitForSelector("#live.on");
  const nodes = await page.textContent("#nodes");
  assert.ok(nodes.includes(KILL_NODE) && nodes.includes("pi1"), nodes);
  assert.match(await page.textContent("main"), /demo/);
  await shot("overview");
  step("logged in; the overview shows the nodes and the demo job");

  // A node dies: the overview says so without a reload.
  await page.evaluate(() => { window.notReloaded = true; });
  const t0 = Date.now();
  process.kill(Number(KILL_PID), "SIGKILL");
  await page.waitForFunction((n) => {
    const p = document.querySelector("#problems")?.parentElement;
    return p && p.textContent.includes("down") && p.textContent.includes(n);
  }, KILL_NODE, { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  step(`node ${KILL_NODE} killed: shown down on the open page after ${Date.now() - t0} ms`);
  await shot("overview-node-down");

  // Nodes list and a node's page.
  await page.goto(HUB + "/ui/nodes/pi1");
  await page.waitForSelector("text=Drain");
  await shot("node");

  // The editor: plan shows the field diff, run submits and opens the job.
  await page.goto(HUB + "/ui/jobs/run");
  await page.fill("#job", JOB.replace("count = 1", "count = 2"));
  await page.click("button:has-text('Plan')");
  await page.waitForFunction(() => document.querySelector("#job-editor .result").textContent.includes("groups[web].count"));
  const plan = await page.textContent("#job-editor .result");
  assert.match(plan, /~ groups\[web\]\.count: 1 → 2/, plan);
  await shot("job-plan");
  await page.click("button:has-text('Run')");
  await page.waitForURL(HUB + "/ui/jobs/demo");
  await page.waitForFunction(() => document.querySelectorAll("main table")[1]?.querySelectorAll("tbody tr").length >= 2, null, { timeout: 20000 });
  // The job's versions: dated, each with what it changed.
  const versions = await page.textContent("main table.diff");
  assert.match(versions, /v1\s*\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s*~ groups\[web\]\.count: 1 → 2/, versions);
  await shot("job");
  step("planned (count 1 → 2 shown) and ran the job from the editor; its versions are dated, with the diff");

  // An allocation's live logs.
  const alloc = await page.getAttribute("main table:nth-of-type(1) a[href^='/ui/allocations/']", "href").catch(() => null)
    || await page.locator("a[href^='/ui/allocations/']").first().getAttribute("href");
  await page.goto(HUB + alloc);
  await page.waitForFunction(() => (document.querySelector("#logs")?.textContent || "").includes("demo-says"), null, { timeout: 20000 })
    .catch(async (e) => { throw new Error(`no logs on ${alloc}: ${await page.textContent("main")}: ${e}`); });
  assert.match(await page.textContent("#task-events"), /started/);
  // Restart in place from the page: the node restarts the task and says so in its events.
  page.once("dialog", (d) => d.accept());
  await page.click("main form[data-api$='/restart'] button");
  await page.waitForFunction(() => (document.querySelector("#task-events")?.textContent || "").includes("restarted: asked by an operator"), null, { timeout: 20000 })
    .catch(async (e) => { throw new Error(`no restart event: ${await page.textContent("main")}: ${e}`); });
  await shot("allocation");
  step("the allocation's logs stream into the page; its tasks' events show a restart asked from the page");

  // The job's rolling restart, from its page.
  await page.goto(HUB + await page.getAttribute("main dl a[href^='/ui/jobs/']", "href"));
  page.once("dialog", (d) => d.accept());
  await page.click("button[data-action=rolling-restart]");
  await page.waitForFunction(() => /restarted \d+ allocation\(s\), one at a time/.test(document.querySelector("#job-result")?.textContent || ""), null, { timeout: 30000 })
    .catch(async (e) => { throw new Error(`rolling restart: ${await page.textContent("#job-result")}: ${e}`); });
  step("the job's allocations restarted one at a time from its page");

  // KV: a save over a value changed since the page read it is refused.
  await page.goto(HUB + "/ui/kv?prefix=app/&key=app/greeting");
  await page.waitForSelector("#kv-editor");
  const put = await fetch(HUB + "/v1/kv/app/greeting", { method: "PUT", headers: { Authorization: "Bearer " + ROOT }, body: "changed behind its back" });
  assert.equal(put.status, 200);
  await page.fill("#value", "from the browser");
  await page.click("#kv-editor button[type=submit]");
  await page.waitForSelector("#kv-editor .result.err");
  assert.match(await page.textContent("#kv-editor .result"), /changed since this page read it/);
  const kept = await (await fetch(HUB + "/v1/kv/app/greeting?raw", { headers: { Authorization: "Bearer " + ROOT } })).text();
  assert.equal(kept, "changed behind its back");
  await shot("kv");
  step("a stale KV save is refused, the newer value kept");

  // Variables: the path listed, a value shown only when asked for.
  await page.goto(HUB + "/ui/vars?path=app/db");
  assert.match(await page.textContent("main"), /app\/db[\s\S]*password/);
  assert.equal(await page.isVisible("text=s3cret-in-the-ui"), false, "a value is shown before it is asked for");
  await page.click("main details summary");
  assert.equal(await page.isVisible("text=s3cret-in-the-ui"), true);
  // ACL: a policy and a token made from the page; the secret shown once.
  await page.goto(HUB + "/ui/acl");
  await page.fill("#new-policy input[name=name]", "kv-reader");
  await page.fill("#new-policy textarea[name=rules]", 'kv "" {\n  policy = "read"\n}\n');
  await page.click("#new-policy button[type=submit]");
  await page.waitForSelector("main details summary:has-text('kv-reader')");
  await page.fill("#new-token input[name=description]", "made in the UI");
  await page.fill("#new-token input[name=policies]", "kv-reader");
  await page.click("#new-token button[type=submit]");
  await page.waitForFunction(() => /"secret":\s*"/.test(document.querySelector("#new-token .result")?.textContent || ""));
  await shot("acl");
  step("an ACL policy and a token made from the page (the secret shown once)");
  await page.goto(HUB + "/ui/services");
  await shot("services");
  await page.goto(HUB + "/ui/routing");
  await shot("routing");

  // A call to the API through the UI without the page's header is refused.
  const bare = await page.evaluate(async () => (await fetch("/ui/api/api/v1/jobs/demo", { method: "DELETE" })).status);
  assert.equal(bare, 403);

  // A read-only token: no stop button, and a forged stop is refused by the API.
  const ro = await (await browser.newContext({ colorScheme: "light" })).newPage();
  await ro.goto(HUB + "/ui/login");
  await ro.fill("#token", READ);
  await ro.click("button[type=submit]");
  await ro.waitForURL(HUB + "/ui/");
  await ro.goto(HUB + "/ui/jobs/demo");
  assert.equal(await ro.locator("button:has-text('Stop')").count(), 0, "a read-only token is offered Stop");
  assert.equal(await ro.locator("button:has-text('Restart')").count(), 0, "a read-only token is offered Restart");
  assert.equal(await ro.locator("text=Run a job").count(), 0);
  await ro.goto(HUB + "/ui/vars?path=app/db");
  assert.ok(!(await ro.textContent("main")).includes("password"), "a token without var:read sees a variable");
  const forged = await ro.evaluate(async () => {
    const r = await fetch("/ui/api/api/v1/jobs/demo", { method: "DELETE", headers: { "X-Rabble-UI": "1" } });
    return [r.status, await r.text()];
  });
  assert.equal(forged[0], 403, forged[1]);
  assert.match(forged[1], /permission denied/);
  await ro.goto(HUB + "/ui/jobs/demo");
  await ro.screenshot({ path: `${SHOTS}/job-read-only-light.png`, fullPage: true });
  step("a read-only token sees no Stop and no variable; a forged stop is refused (403)");

  // Phone-sized.
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" })).newPage();
  await phone.goto(HUB + "/ui/login");
  await phone.fill("#token", ROOT);
  await phone.click("button[type=submit]");
  await phone.waitForURL(HUB + "/ui/");
  await phone.screenshot({ path: `${SHOTS}/overview-phone.png`, fullPage: true });
  console.log("ui: all passed");
} finally {
  await browser.close();
}
