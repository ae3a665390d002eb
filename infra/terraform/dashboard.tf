# The dashboard and read API on Cloud Run: the embedded server (`eventmgmt serve`, the image of
# infra/container/Dockerfile) against the Cloud SQL state store, so its pages and /api/incidents,
# /api/events show what the functions stored. There is no dashboard-only mode: serve also runs its
# own ingest, correlation ticker and route worker. Here they are kept from acting on the pipeline's
# behalf (docs/deploy.md, "The dashboard on Cloud Run"):
#   - no receiver variables and no EVENTMGMT_PROMETHEUS_URL: its route worker pages nobody, its
#     collector does not start;
#   - EVENTMGMT_INGEST_TOKEN set: its /ingest and the API's writes need the token (senders post to
#     the ingest function, never here);
#   - an incident its ticker resolves is archived to the same bucket (EVENTMGMT_ARCHIVE_URL), and
#     the route-flush function's catch-up tells the receivers.
# It runs as its own service account: the two secrets it reads, the archive's objects, nothing else.

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = "eventmgmt"
  format        = "DOCKER"
  description   = "eventmgmt images (infra/container/Dockerfile)"
  depends_on    = [google_project_service.api]
}

resource "google_service_account" "dashboard" {
  account_id   = "eventmgmt-dashboard"
  display_name = "eventmgmt dashboard (Cloud Run)"
}

resource "google_secret_manager_secret_iam_member" "dashboard" {
  for_each  = toset(["database-url", "ingest-token"])
  secret_id = google_secret_manager_secret.secret[each.value].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.dashboard.email}"
}

# NOTE: objectUser (get, list, create, delete objects): the archive writer lists what it writes into.
resource "google_storage_bucket_iam_member" "dashboard_archive" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.dashboard.email}"
}

locals {
  dashboard_image = (
    var.dashboard_image != "" ? var.dashboard_image
    : "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}/eventmgmt:latest"
  )
  # What notifications link to: a custom domain in front of the service if given, else its own URL.
  dashboard_url = var.dashboard_url != "" ? var.dashboard_url : google_cloud_run_v2_service.dashboard.uri
  # Host names the server answers (DNS rebinding guard): the service's run.app names, and the
  # custom domain's.
  dashboard_hosts = join(",", compact([
    ".run.app", var.dashboard_url == "" ? "" : regex("^[a-z]+://([^/:]+)", var.dashboard_url)[0],
  ]))
}

resource "google_cloud_run_v2_service" "dashboard" {
  name     = "eventmgmt-dashboard"
  location = var.region
  ingress  = "INGRESS_TRAFFIC_ALL"

  template {
    service_account = google_service_account.dashboard.email

    # NOTE: one instance: the pages carry a CSRF token of the process that served them, and the
    # in-process ticker and route worker should not run twice.
    scaling {
      min_instance_count = 0
      max_instance_count = 1
    }

    vpc_access {
      connector = google_vpc_access_connector.connector.id
      egress    = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image   = local.dashboard_image
      command = ["eventmgmt"]
      args    = ["serve", "--host", "0.0.0.0", "--port", "8080"]

      ports {
        container_port = 8080
      }

      resources {
        limits = { cpu = "1", memory = "1Gi" }
        # NOTE: CPU only while a request is answered (the default, which a resources block must
        # restate): between page views the in-process ticker and route worker hardly run.
        cpu_idle = true
      }

      env {
        name  = "EVENTMGMT_HOME"
        value = "/tmp/eventmgmt"
      }
      env {
        name  = "EVENTMGMT_ARCHIVE_URL"
        value = "gs://${google_storage_bucket.archive.name}"
      }
      env {
        name  = "EVENTMGMT_ALLOWED_HOSTS"
        value = local.dashboard_hosts
      }
      env {
        name = "EVENTMGMT_DATABASE_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.secret["database-url"].secret_id
            version = "latest"
          }
        }
      }
      env {
        name = "EVENTMGMT_INGEST_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.secret["ingest-token"].secret_id
            version = "latest"
          }
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_version.database_url, google_secret_manager_secret_iam_member.dashboard]
}

# Who may open it: Cloud Run checks the caller's Google identity before a request reaches the server.
# Besides the project's owners and editors, only these members (`gcloud run services proxy
# eventmgmt-dashboard --region ...` opens it on localhost for one of them).
resource "google_cloud_run_v2_service_iam_member" "dashboard_invoker" {
  for_each = toset(var.dashboard_invokers)
  project  = var.project
  location = google_cloud_run_v2_service.dashboard.location
  name     = google_cloud_run_v2_service.dashboard.name
  role     = "roles/run.invoker"
  member   = each.value
}

output "dashboard_url" {
  description = "The dashboard and read API (/api/incidents, /api/events)"
  value       = google_cloud_run_v2_service.dashboard.uri
}
