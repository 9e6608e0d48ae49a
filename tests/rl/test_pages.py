"""The GRPO pages: list, form with the reward builder, preview, reference recipe, run page and download, for the
owner and for strangers."""
import json
import re

import pytest

from apps.rl.models import GrpoRun, RewardPreview
from apps.rl.services import reward_preview_create
from apps.training.model_choices import default_model_choice
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, make_tuned_model, picker, standin_model  # noqa: F401
from tests.rl.conftest import GOOD, REWARDS, finished_run, jsonl

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    data = {"base_model": "tiny-gemma3", "method": "lora", "backend": "auto", "source": "gsm8k",
            "rewards": json.dumps(REWARDS), "max_steps": "5", "prompt_limit": "10", "preview_mode": "pasted",
            "warmup_template": "{answer}"}
    data.update(overrides)
    return data


def embedded(page, element_id):
    return json.loads(re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.DOTALL).group(1))


def test_it_lists_the_owners_runs_only(alice_client, alice_run, bob):
    finished_run(bob, name="Bob's GRPO")
    page = alice_client.get("/rl/").content.decode()
    assert "Alice&#x27;s GRPO" in page and "Bob&#x27;s GRPO" not in page and "0.500 → 1.500" in page
    assert 'href="/rl/"' in page and 'href="/rl/recipe/"' in page


def test_it_explains_an_empty_list(alice_client):
    page = alice_client.get("/rl/").content.decode()
    assert "No GRPO runs yet" in page and "trial and reward" in page


def test_it_offers_the_reward_builder_with_the_library_and_the_judges_endpoints(alice_client, alice_provider):
    page = alice_client.get("/rl/new/").content.decode()
    library = embedded(page, "reward-library")
    assert [f["type"] for f in library] == ["format", "answer_match", "exact", "contains", "length", "repetition", "judge"]
    providers = embedded(page, "reward-providers")
    assert [str(alice_provider.code), "My provider: Judge box (fake-model)"] in providers
    assert 'data-role="builder"' in page and "rl/builder.js" in page and "Preview the rewards" in page


def test_it_starts_a_run_from_the_form(alice_client, alice):
    response = alice_client.post("/rl/new/", form_data(name="From the form", temperature="0.8", warmup_steps="0"))
    run = GrpoRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rl/{run.code}/"
    assert run.owner == alice and run.name == "From the form" and run.prompt_count == 10
    assert run.settings["temperature"] == 0.8 and run.settings["max_steps"] == 5 and run.job.kind == "grpo"


def test_it_starts_a_run_from_an_uploaded_file_or_a_version(alice_client, alice_version):
    response = alice_client.post("/rl/new/", form_data(source="upload", warmup_steps="0",
                                                       prompts_file=jsonl({"prompt": "3 + 4?", "answer": "7"})))
    assert response.status_code == 302 and GrpoRun.objects.get().prompts_filename == "prompts.jsonl"
    response = alice_client.post("/rl/new/", form_data(source="version", version=str(alice_version.code)))
    assert response.status_code == 302 and GrpoRun.objects.filter(version=alice_version).exists()


def test_it_shows_readable_form_errors(alice_client):
    response = alice_client.post("/rl/new/", form_data(rewards="[]"))
    assert response.status_code == 400 and "Add at least one reward function" in response.content.decode()
    response = alice_client.post("/rl/new/", form_data(source="version"))
    assert response.status_code == 400 and "Choose one of your dataset versions" in response.content.decode()
    response = alice_client.post("/rl/new/", form_data(source="upload", prompts_file=jsonl("oops")))
    assert response.status_code == 400 and "Line 1 is not valid JSON" in response.content.decode()
    assert not GrpoRun.objects.exists()


def test_it_answers_404_for_someone_elses_version(bob_client, alice_version):
    response = bob_client.post("/rl/new/", form_data(source="version", version=str(alice_version.code)))
    assert response.status_code == 404 and not GrpoRun.objects.exists()


def test_it_previews_pasted_completions_and_shows_each_functions_score(alice_client, alice):
    response = alice_client.post("/rl/previews/", form_data(
        sample_prompt_0="3 + 4?", sample_completion_0=GOOD, sample_answer_0="7",
        sample_completion_1="I do not know."))
    preview = RewardPreview.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rl/previews/{preview.code}/"
    page = alice_client.get(response["Location"]).content.decode()
    assert page.count('data-role="score-row"') == 2 and "2.50" in page and "sections &lt;reasoning&gt; &lt;answer&gt;" in page
    assert not GrpoRun.objects.exists()  # a preview spends no GPU time
    # Back to the form with the same functions and samples.
    form = alice_client.get(f"/rl/new/?preview={preview.code}").content.decode()
    assert "&quot;correct&quot;" in form and "I do not know." in form


def test_it_explains_a_preview_without_samples(alice_client):
    response = alice_client.post("/rl/previews/", form_data())
    assert response.status_code == 400 and "at least one sample" in response.content.decode()


def test_it_previews_completions_the_base_model_writes(alice_client):
    response = alice_client.post("/rl/previews/", form_data(preview_mode="generate", preview_count="2"))
    preview = RewardPreview.objects.get()
    assert response.status_code == 302 and preview.generated and preview.job.queue == "gpu"
    page = alice_client.get(response["Location"]).content.decode()
    assert str(preview.job.code) in page and "Scores appear here once the model has written its completions" in page


def test_it_keeps_previews_private(alice, bob_client):
    preview = reward_preview_create(owner=alice, rewards=REWARDS, samples=[{"completion": "7"}])
    assert bob_client.get(f"/rl/previews/{preview.code}/").status_code == 404
    assert bob_client.get(f"/rl/new/?preview={preview.code}").status_code == 404


def test_it_starts_the_reference_recipe_in_one_click(alice_client, no_site_endpoint):
    page = alice_client.get("/rl/recipe/").content.decode()
    assert "Gemma 3 1B Instruct on GSM8K" in page and "under 3% to over 50%" in page
    assert "No chat endpoint is available for a judge" in page
    response = alice_client.post("/rl/recipe/", {"base_model": "someone/their-model"})
    run = GrpoRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rl/{run.code}/" and run.recipe
    response = alice_client.post("/rl/recipe/", {"base_model": "someone/their-model", "judge": "on"})
    assert response.status_code == 400 and "no default chat endpoint" in response.content.decode()


def test_it_shows_a_run_with_charts_samples_and_results(alice_client, alice_run):
    page = alice_client.get(f"/rl/{alice_run.code}/").content.decode()
    chart = embedded(page, "grpo-history")
    assert [p["step"] for p in chart] == [1, 2, 3] and "samples" not in chart[-1] and chart[0]["reward/format"] == 0.2
    assert embedded(page, "grpo-functions") == ["format", "correct"]
    assert page.count('data-role="sample"') == 1 and "3 and 4 make 7." in page
    assert 'data-role="reward-last"><b>1.500' in page and "rl/run.js" in page and str(alice_run.job.code) in page
    assert 'data-role="download"' not in page  # no files


def shown_status_texts(page: str) -> list[str]:
    """The status-dependent texts a page shows (the others carry `hidden`)."""
    return [text.strip() for hidden, text in re.findall(r'data-show-when="[^"]+"( hidden)?>([^<]*)<', page) if not hidden]


def test_it_shows_a_queued_run_with_empty_states_that_follow_its_status(alice_client, alice):
    from apps.core.models import Job
    from apps.core.services import job_finish
    from apps.rl.services import grpo_run_create

    run = grpo_run_create(owner=alice, rewards=REWARDS, source="upload", prompts_file=jsonl({"prompt": "3 + 4?", "answer": "7"}),
                          base_model="tiny-gemma3", settings={"max_steps": 3})
    page = alice_client.get(f"/rl/{run.code}/").content.decode()
    assert shown_status_texts(page) == ["The charts start with the first GRPO step.", "Samples appear after the first GRPO step.",
                                        "Results appear here when the run has finished."]
    # Once it failed, no text says that something is still coming.
    job_finish(job=run.job, status=Job.Status.FAILED, error_message="The model could not be loaded.")
    page = alice_client.get(f"/rl/{run.code}/").content.decode()
    assert shown_status_texts(page) == ["The run ended before its first GRPO step.",
                                        "No samples: the run ended before its first GRPO step.",
                                        "No results: the run stopped before it finished."]


def test_it_answers_404_to_strangers_for_runs_and_downloads(bob_client, alice_run):
    assert bob_client.get(f"/rl/{alice_run.code}/").status_code == 404
    assert bob_client.get(f"/rl/{alice_run.code}/download/").status_code == 404
    assert bob_client.get("/rl/not-a-uuid/").status_code == 404


def test_it_downloads_the_adapter(alice_client, alice_run, settings):
    assert alice_client.get(f"/rl/{alice_run.code}/download/").status_code == 404
    path = settings.GARAGE_ARTIFACTS_DIR / "grpo" / str(alice_run.code) / "adapter.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    alice_run.artifact = f"grpo/{alice_run.code}/adapter.zip"
    alice_run.save()
    assert 'data-role="download"' in alice_client.get(f"/rl/{alice_run.code}/").content.decode()
    response = alice_client.get(f"/rl/{alice_run.code}/download/")
    assert response.status_code == 200 and "adapter.zip" in response["Content-Disposition"]


def test_it_asks_strangers_to_sign_in(client, alice_run):
    for path in ("/rl/", "/rl/new/", "/rl/recipe/", f"/rl/{alice_run.code}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_shows_runs_and_previews_in_the_admin(client, alice_run, alice):
    from apps.accounts.models import User

    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    preview = reward_preview_create(owner=alice, rewards=REWARDS, samples=[{"completion": "7"}])
    for url in ["/admin/rl/grporun/", f"/admin/rl/grporun/{alice_run.pk}/change/", "/admin/rl/rewardpreview/",
                f"/admin/rl/rewardpreview/{preview.pk}/change/"]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "1.500" in client.get("/admin/rl/grporun/").content.decode()


def test_it_offers_the_same_models_as_every_feature_and_proposes_the_default(alice, alice_client, standin_model):
    tuned = make_tuned_model(alice, name="Valley model", finished=False)
    tuned.artifact = "x/adapter.zip"  # finished, as far as the list is concerned
    tuned.save()
    page = alice_client.get("/rl/new/").content.decode()
    groups, selected = picker(page, "base_model")
    assert (STANDIN_ID, f"{STANDIN_LABEL} · 1 M parameters") in groups["Installed on this server"]
    assert f"finetune:{tuned.code}" in dict(groups["Your models"])
    assert dict(groups["Test model"])["tiny-gemma3"].startswith("Tiny test model")
    assert selected == default_model_choice()
    response = alice_client.post("/rl/new/", form_data(base_model=f"finetune:{tuned.code}"))
    assert response.status_code == 302 and GrpoRun.objects.get().base_model == f"finetune:{tuned.code}"
