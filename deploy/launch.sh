#!/usr/bin/env bash
# khabar on Google Cloud: one-time setup, image builds, the Flex Template, batch and
# streaming jobs, drain/update, and the poller on Cloud Run. Every step is a plain gcloud
# or docker command; deploy/README.md explains them. Not run in khabar's tests (no cloud).
#
#   PROJECT=my-project deploy/launch.sh setup
#   PROJECT=my-project deploy/launch.sh build           # wheel, 3 images, push
#   PROJECT=my-project deploy/launch.sh template        # the Flex Template spec on GCS
#   PROJECT=my-project deploy/launch.sh batch gs://B/in/2026-11-29/ gs://B/out/2026-11-29
#   PROJECT=my-project deploy/launch.sh streaming gs://B/stream/gen1
#   PROJECT=my-project deploy/launch.sh update gs://B/stream/gen1   # new code, same job
#   PROJECT=my-project deploy/launch.sh drain
#   PROJECT=my-project deploy/launch.sh poller feeds.txt
#
# Settings (environment): PROJECT (required), REGION, TAG, REPO, DATA_BUCKET,
# DATAFLOW_BUCKET, TOPIC, SUBSCRIPTION, MACHINE_TYPE, MAX_WORKERS, NUM_WORKERS,
# STREAM_JOB, FLEXRS=1 (batch on cheaper, delayed FlexRS capacity), PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/.." && pwd)"

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
REGION="${REGION:-europe-west1}"
REPO="${REPO:-khabar}"
TAG="${TAG:-$(git -C "${ROOT}" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M)}"
REGISTRY="${REGION}-docker.pkg.dev/${PROJECT}/${REPO}"
WORKER_IMAGE="${REGISTRY}/worker:${TAG}"
LAUNCHER_IMAGE="${REGISTRY}/launcher:${TAG}"
POLLER_IMAGE="${REGISTRY}/poller:${TAG}"
DATA_BUCKET="${DATA_BUCKET:-${PROJECT}-khabar-data}"
DATAFLOW_BUCKET="${DATAFLOW_BUCKET:-${PROJECT}-khabar-dataflow}"
TEMPLATE="gs://${DATAFLOW_BUCKET}/templates/khabar-${TAG}.json"
TEMP_LOCATION="gs://${DATAFLOW_BUCKET}/tmp"
STAGING_LOCATION="gs://${DATAFLOW_BUCKET}/staging"
WORKER_SA="khabar-dataflow@${PROJECT}.iam.gserviceaccount.com"
POLLER_SA="khabar-poller@${PROJECT}.iam.gserviceaccount.com"
TOPIC="${TOPIC:-khabar-raw}"
SUBSCRIPTION="${SUBSCRIPTION:-khabar-pipeline}"
MACHINE_TYPE="${MACHINE_TYPE:-n2-standard-2}"
MAX_WORKERS="${MAX_WORKERS:-4}"
NUM_WORKERS="${NUM_WORKERS:-1}"
STREAM_JOB="${STREAM_JOB:-khabar-stream}"
PYTHON="${PYTHON:-${ROOT}/.venv/bin/python}"

say() { printf '\n== %s\n' "$*" >&2; }

# Offline check of the options the launcher will get (one clear line if something is off),
# so a typo fails here and not minutes later on a launcher VM.
check() {
  if [[ -x "${PYTHON}" ]]; then
    (cd "${ROOT}" && "${PYTHON}" -m khabar.pipeline.commands.deploy check --runner DataflowRunner \
      --project "${PROJECT}" --region "${REGION}" --temp_location "${TEMP_LOCATION}" \
      --sdk_container_image "${WORKER_IMAGE}" "$@")
  fi
}

cmd_setup() {
  say "APIs"
  gcloud services enable dataflow.googleapis.com compute.googleapis.com \
    storage.googleapis.com pubsub.googleapis.com artifactregistry.googleapis.com \
    run.googleapis.com cloudscheduler.googleapis.com --project "${PROJECT}"

  say "Artifact Registry repository ${REGISTRY}"
  gcloud artifacts repositories create "${REPO}" --repository-format=docker \
    --location="${REGION}" --project "${PROJECT}" || true

  say "service accounts"
  gcloud iam service-accounts create khabar-dataflow --project "${PROJECT}" \
    --display-name="khabar Dataflow launcher and workers" || true
  gcloud iam service-accounts create khabar-poller --project "${PROJECT}" \
    --display-name="khabar edge poller" || true
  gcloud projects add-iam-policy-binding "${PROJECT}" \
    --member="serviceAccount:${WORKER_SA}" --role=roles/dataflow.worker --condition=None
  gcloud artifacts repositories add-iam-policy-binding "${REPO}" --location="${REGION}" \
    --project "${PROJECT}" --member="serviceAccount:${WORKER_SA}" \
    --role=roles/artifactregistry.reader

  say "buckets (temp/staging without soft delete: it would bill for deleted temp files)"
  gcloud storage buckets create "gs://${DATAFLOW_BUCKET}" --project "${PROJECT}" \
    --location="${REGION}" --uniform-bucket-level-access --soft-delete-duration=0 || true
  gcloud storage buckets create "gs://${DATA_BUCKET}" --project "${PROJECT}" \
    --location="${REGION}" --uniform-bucket-level-access || true
  for bucket in "${DATAFLOW_BUCKET}" "${DATA_BUCKET}"; do
    gcloud storage buckets add-iam-policy-binding "gs://${bucket}" \
      --member="serviceAccount:${WORKER_SA}" --role=roles/storage.objectAdmin
  done
  gcloud storage buckets add-iam-policy-binding "gs://${DATA_BUCKET}" \
    --member="serviceAccount:${POLLER_SA}" --role=roles/storage.objectAdmin

  say "Pub/Sub topic ${TOPIC} and subscription ${SUBSCRIPTION}"
  gcloud pubsub topics create "${TOPIC}" --project "${PROJECT}" || true
  gcloud pubsub subscriptions create "${SUBSCRIPTION}" --topic="${TOPIC}" \
    --project "${PROJECT}" --ack-deadline=60 --message-retention-duration=7d || true
  gcloud pubsub topics add-iam-policy-binding "${TOPIC}" --project "${PROJECT}" \
    --member="serviceAccount:${POLLER_SA}" --role=roles/pubsub.publisher
  for role in roles/pubsub.subscriber roles/pubsub.viewer; do
    gcloud pubsub subscriptions add-iam-policy-binding "${SUBSCRIPTION}" \
      --project "${PROJECT}" --member="serviceAccount:${WORKER_SA}" --role="${role}"
  done
  say "done; operators also need roles/dataflow.developer and roles/iam.serviceAccountUser" \
    "on ${WORKER_SA} (see deploy/README.md)"
}

cmd_build() {
  local ctx
  ctx="$(mktemp -d)"
  trap 'rm -rf "${ctx}"' RETURN
  say "wheel (package data: language model, schemas, shipped models)"
  "${PYTHON}" -m pip wheel --no-deps --quiet --wheel-dir "${ctx}" "${ROOT}"
  cp "${HERE}"/Dockerfile.* "${HERE}/main.py" "${ctx}/"
  cp -r "${ROOT}/seeds" "${ctx}/seeds"
  gcloud auth configure-docker "${REGION}-docker.pkg.dev" --quiet

  say "worker image ${WORKER_IMAGE}"
  docker build -f "${ctx}/Dockerfile.worker" -t "${WORKER_IMAGE}" "${ctx}"
  docker push "${WORKER_IMAGE}"
  # The launcher and the poller get exactly the library versions of the worker image.
  docker run --rm --entrypoint pip "${WORKER_IMAGE}" freeze \
    | grep -v -i -E '^(khabar|-e )' > "${ctx}/constraints.txt"

  say "launcher image ${LAUNCHER_IMAGE}"
  docker build -f "${ctx}/Dockerfile.launcher" --build-arg "WORKER_IMAGE=${WORKER_IMAGE}" \
    -t "${LAUNCHER_IMAGE}" "${ctx}"
  docker push "${LAUNCHER_IMAGE}"

  say "poller image ${POLLER_IMAGE}"
  docker build -f "${ctx}/Dockerfile.poller" -t "${POLLER_IMAGE}" "${ctx}"
  docker push "${POLLER_IMAGE}"
}

cmd_template() {
  say "Flex Template ${TEMPLATE}"
  gcloud dataflow flex-template build "${TEMPLATE}" --project "${PROJECT}" \
    --image="${LAUNCHER_IMAGE}" --sdk-language=PYTHON \
    --metadata-file="${HERE}/metadata.json"
}

cmd_batch() {
  local input="${1:?usage: launch.sh batch gs://BUCKET/input/ gs://BUCKET/output}"
  local output="${2:?usage: launch.sh batch gs://BUCKET/input/ gs://BUCKET/output}"
  shift 2
  check --input "${input}" --output "${output}"
  local extra=()
  if [[ "${FLEXRS:-0}" == "1" ]]; then extra+=(--flexrs-goal=COST_OPTIMIZED); fi
  say "batch job: ${input} -> ${output}"
  gcloud dataflow flex-template run "khabar-batch-$(date -u +%Y%m%d-%H%M%S)" \
    --project "${PROJECT}" --region "${REGION}" \
    --template-file-gcs-location="${TEMPLATE}" \
    --service-account-email="${WORKER_SA}" \
    --temp-location="${TEMP_LOCATION}" --staging-location="${STAGING_LOCATION}" \
    --worker-machine-type="${MACHINE_TYPE}" --max-workers="${MAX_WORKERS}" \
    --parameters="input=${input},output=${output}" "${extra[@]}" "$@"
}

run_streaming() {
  local output="$1"
  shift
  check --streaming --subscription "projects/${PROJECT}/subscriptions/${SUBSCRIPTION}" \
    --output "${output}"
  gcloud dataflow flex-template run "${STREAM_JOB}" \
    --project "${PROJECT}" --region "${REGION}" \
    --template-file-gcs-location="${TEMPLATE}" \
    --service-account-email="${WORKER_SA}" \
    --temp-location="${TEMP_LOCATION}" --staging-location="${STAGING_LOCATION}" \
    --worker-machine-type="${MACHINE_TYPE}" \
    --num-workers="${NUM_WORKERS}" --max-workers="${MAX_WORKERS}" \
    --enable-streaming-engine \
    --parameters="streaming=true,subscription=projects/${PROJECT}/subscriptions/${SUBSCRIPTION},output=${output}" \
    "$@"
}

cmd_streaming() {
  local output="${1:?usage: launch.sh streaming gs://BUCKET/stream/GENERATION}"
  shift
  say "streaming job ${STREAM_JOB}: ${SUBSCRIPTION} -> ${output}"
  run_streaming "${output}" "$@"
}

cmd_update() {
  local output="${1:?usage: launch.sh update gs://BUCKET/stream/GENERATION (same as running)}"
  shift
  say "update ${STREAM_JOB} in place with ${TEMPLATE} (keeps dedup state and in-flight data)"
  run_streaming "${output}" --update "$@"
}

cmd_drain() {
  local id
  id="$(gcloud dataflow jobs list --project "${PROJECT}" --region "${REGION}" \
    --status=active --filter="name=${STREAM_JOB}" --format='value(id)' | head -n 1)"
  if [[ -z "${id}" ]]; then
    echo "no active job named ${STREAM_JOB}" >&2
    exit 1
  fi
  say "drain ${STREAM_JOB} (${id}): stop reading, close open windows, write their files"
  gcloud dataflow jobs drain "${id}" --project "${PROJECT}" --region "${REGION}"
}

cmd_poller() {
  local feeds="${1:?usage: launch.sh poller FEEDS_FILE (one feed URL per line)}"
  local job=khabar-poller
  say "feeds list -> gs://${DATA_BUCKET}/poller/feeds.txt (mounted at /config)"
  gcloud storage cp "${feeds}" "gs://${DATA_BUCKET}/poller/feeds.txt"
  say "Cloud Run job ${job}: one poll per execution, state in gs://${DATA_BUCKET}/poller/"
  local args="--feeds-file=/config/poller/feeds.txt,--topic=projects/${PROJECT}/topics/${TOPIC}"
  args+=",--state=gs://${DATA_BUCKET}/poller/state.json,--max-runtime=0"
  local verb=create
  if gcloud run jobs describe "${job}" --project "${PROJECT}" --region "${REGION}" \
    >/dev/null 2>&1; then
    verb=update
  fi
  gcloud run jobs "${verb}" "${job}" --project "${PROJECT}" --region "${REGION}" \
    --image="${POLLER_IMAGE}" --service-account="${POLLER_SA}" \
    --args="${args}" --task-timeout=240s --max-retries=0 --memory=512Mi --cpu=1 \
    --add-volume="name=config,type=cloud-storage,bucket=${DATA_BUCKET},readonly=true" \
    --add-volume-mount="volume=config,mount-path=/config"
  gcloud run jobs add-iam-policy-binding "${job}" --project "${PROJECT}" \
    --region "${REGION}" --member="serviceAccount:${POLLER_SA}" --role=roles/run.invoker
  say "Cloud Scheduler: run it every 5 minutes"
  gcloud scheduler jobs create http "${job}-every-5-min" --project "${PROJECT}" \
    --location="${REGION}" --schedule="*/5 * * * *" --http-method=POST \
    --uri="https://run.googleapis.com/v2/projects/${PROJECT}/locations/${REGION}/jobs/${job}:run" \
    --oauth-service-account-email="${POLLER_SA}" || true
}

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local command="${1:-}"
  shift || true
  case "${command}" in
    setup) cmd_setup "$@" ;;
    build) cmd_build "$@" ;;
    template) cmd_template "$@" ;;
    batch) cmd_batch "$@" ;;
    streaming) cmd_streaming "$@" ;;
    update) cmd_update "$@" ;;
    drain) cmd_drain "$@" ;;
    poller) cmd_poller "$@" ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
