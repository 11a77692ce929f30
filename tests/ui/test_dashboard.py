"""The dashboard at /ui/ (SPEC §10) in a real headless Chromium."""

from __future__ import annotations

from silverexport import ExportRequest, JobStatus
from silverexport.silver.demo import generate
from tests.http.conftest import transfer_rows
from tests.stored import stored_bytes

from .conftest import Hold, artefact_dir

JOB_ROW = "table#jobs tr[data-job-id='{}']"


def status_row(job_id: str, status: str) -> str:
    return f"table#jobs tr[data-job-id='{job_id}'][data-status='{status}']"


def test_a_job_appears_and_goes_live_to_completed(served, dashboard):
    hold = Hold("token_transfers")
    system, url = served(export_fn=hold)
    system.store.ingest("token_transfers", transfer_rows(60))
    job = system.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="alice")
    hold.entered.wait(30)
    tab = dashboard(url)
    page = tab.open()
    assert page.locator("table#jobs tr[data-job-id]").count() == 0  # nothing before a key
    tab.connect()
    page.wait_for_selector(status_row(job.job_id, "running"))
    assert page.evaluate("sessionStorage.getItem('silverexport.apiKey')") == "k1"
    # From here on only the job's event stream can tell the page anything: no list refresh.
    page.evaluate("clearInterval(state.timer)")
    hold.released.set()
    row = page.wait_for_selector(status_row(job.job_id, "completed"))
    assert row.query_selector("td.rows").inner_text() == "60"
    assert row.query_selector("a.download") is not None
    streams = [u for u in tab.requests if u.endswith(f"/v1/export/jobs/{job.job_id}/stream")]
    assert streams, tab.requests
    assert tab.foreign_requests() == []


def test_the_form_creates_a_job_with_every_body_field(served, dashboard):
    system, url = served()
    system.store.ingest("token_transfers", transfer_rows(60))
    tab = dashboard(url)
    page = tab.open()
    tab.connect()
    page.wait_for_selector("#create:not([disabled])")
    form = page.locator("form#new-export")
    options = form.locator("select[name=format] option").evaluate_all("o => o.map(x => x.value)")
    assert options == ["jsonl", "csv", "parquet"]
    form.locator("select[name=dataset]").select_option("token_transfers")
    form.locator("select[name=format]").select_option("csv")
    form.locator("select[name=compression]").select_option("gzip")
    form.locator("input[name=target_id]").fill("t1")
    form.locator("input[name=network]").fill("ethereum")
    form.locator("input[name=from]").fill("2023-11-14T22:13:20Z")
    form.locator("input[name=to]").fill("2023-11-14T22:14:20Z")
    form.locator("input[name=limit]").fill("5")
    form.locator("button[type=submit]").click()

    row = page.wait_for_selector("table#jobs tr[data-job-id]")
    job_id = row.get_attribute("data-job-id")
    view = system.wait(job_id, timeout=30)
    assert view.status is JobStatus.COMPLETED
    assert (view.dataset, view.format.value, view.compression.value) == (
        "token_transfers",
        "csv",
        "gzip",
    )
    assert view.filters == {
        "target_id": "t1",
        "network": "ethereum",
        "from": "2023-11-14T22:13:20.000Z",
        "to": "2023-11-14T22:14:20.000Z",
    }
    assert view.limit == 5
    page.wait_for_selector(status_row(job_id, "completed"))
    # The new job is selected: its history is shown, live up to its completion.
    page.wait_for_selector("#history li[data-seq].JobCompleted")

    # A request the API refuses shows the API's own message and creates nothing.
    form.locator("input[name=to]").fill("2023-11-14T22:13:20Z")
    form.locator("button[type=submit]").click()
    error = page.wait_for_selector("#form-error:not([hidden])")
    assert "from" in error.inner_text() and "before" in error.inner_text()
    assert page.locator("table#jobs tr[data-job-id]").count() == 1
    assert len(system.list(tenant="alice")[0]) == 1
    assert tab.foreign_requests() == []


def test_a_rows_click_shows_its_history_and_download_gets_the_file(served, dashboard):
    system, url = served()
    system.store.ingest("token_transfers", transfer_rows(30))
    first = system.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="alice")
    second = system.submit(ExportRequest(dataset="token_transfers", format="jsonl"), tenant="alice")
    theirs = system.submit(ExportRequest(dataset="token_transfers", format="csv"), tenant="bob")
    for job in (first, second, theirs):
        system.wait(job.job_id, timeout=30)
    tab = dashboard(url)
    page = tab.open()
    tab.connect()
    page.wait_for_selector(status_row(first.job_id, "completed"))
    ids = page.locator("table#jobs tr[data-job-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.jobId)"
    )
    assert ids == [second.job_id, first.job_id]  # the tenant's jobs only, newest first

    page.click(JOB_ROW.format(first.job_id))
    page.wait_for_selector("#history li[data-seq].JobCompleted")
    seqs = page.locator("#history li[data-seq]").evaluate_all(
        "items => items.map(li => Number(li.dataset.seq))"
    )
    assert seqs == [e.seq for e in system.events(first.job_id)]

    with page.expect_download() as download_info:
        page.click(f"{JOB_ROW.format(first.job_id)} a.download")
    download = download_info.value
    assert download.suggested_filename == f"token_transfers-{first.job_id}.csv"
    view = system.status(first.job_id)
    assert download.path().read_bytes() == stored_bytes(system, view)
    assert tab.foreign_requests() == []


def test_a_wrong_key_is_refused_and_not_kept(served, dashboard):
    _system, url = served()
    tab = dashboard(url)
    page = tab.open()
    tab.connect("not-a-key")
    notice = page.wait_for_selector("#notice.error:not([hidden])")
    assert "refused" in notice.inner_text()
    assert page.evaluate("sessionStorage.getItem('silverexport.apiKey')") is None
    assert page.locator("#create").is_disabled()


def test_screenshot_of_a_busy_dashboard(served, dashboard, tmp_path):
    """Kept as an artefact (the README shows one made this way): every status on screen."""
    hold = Hold("positions")
    system, url = served(export_fn=hold, max_concurrent_exports=1)
    with system.slots.ingestion():
        generate(system.store, rows=400, seed=7)
    submit = system.submit
    for request in (
        ExportRequest(dataset="hl_fills", format="csv", target_id="t1"),
        ExportRequest(dataset="token_transfers", format="jsonl", compression="gzip"),
        ExportRequest(dataset="hl_funding", format="csv", limit=100),
    ):
        system.wait(submit(request, tenant="alice").job_id, timeout=30)
    cancelled = submit(ExportRequest(dataset="decoded_events", format="jsonl"), tenant="alice")
    system.cancel(cancelled.job_id)
    running = submit(ExportRequest(dataset="positions", format="csv"), tenant="alice")
    hold.entered.wait(30)
    queued = submit(
        ExportRequest(dataset="native_balance_deltas", format="csv", network="ethereum"),
        tenant="alice",
    )
    tab = dashboard(url)
    page = tab.open()
    tab.connect()
    page.wait_for_selector(status_row(running.job_id, "running"))
    page.wait_for_selector(status_row(queued.job_id, "queued"))
    page.click(JOB_ROW.format(cancelled.job_id))
    page.wait_for_selector("#history li[data-seq].JobCancelled")
    path = artefact_dir(tmp_path) / "dashboard.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"dashboard screenshot: {path}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tab.foreign_requests() == []
    hold.released.set()
