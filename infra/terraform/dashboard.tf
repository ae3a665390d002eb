# The dashboard and read API on Cloud Run: `eventmgmt serve --dashboard-only` (the image of
# infra/container/Dockerfile) against the Cloud SQL state store, so its pages and /api/incidents,
# /api/events show what the functions stored (docs/deploy.md, "The dashboard on Cloud Run"). It
# serves the board, incident and maintenance pages, the read API and ack/resolve; it has no ingest
# route, durable queue, correlation ticker, route worker, archive, collector or retention: the
# functions do all of that. An ack or resolve is applied in correlation's transaction and published
# to events-correlated (EVENTMGMT_TRANSPORT=pubsub), where the route and archive functions take it
# like any other correlated message. EVENTMGMT_INGEST_TOKEN: the API's writes need the token (or
# a page this server rendered).
# It runs as its own service account: the two secrets it reads and publishing to events-correlated.

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

# NOTE: acks, resolutions and maintenance changes go to events-correlated, and nowhere else.
resource "google_pubsub_topic_iam_member" "dashboard_publisher" {
  topic  = google_pubsub_topic.topic["events-correlated"].id
  role   = "roles/pubsub.publisher"
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

    # NOTE: one instance: the pages carry a CSRF token of the process that served them.
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
      args    = ["serve", "--dashboard-only", "--host", "0.0.0.0", "--port", "8080"]

      ports {
        container_port = 8080
      }

      resources {
        limits = { cpu = "1", memory = "1Gi" }
        # NOTE: CPU only while a request is answered (the default, which a resources block must
        # restate): the dashboard-only mode runs nothing between requests.
        cpu_idle = true
      }

      env {
        name  = "EVENTMGMT_HOME"
        value = "/tmp/eventmgmt"
      }
      env {
        name  = "EVENTMGMT_TRANSPORT"
        value = "pubsub"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
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

  depends_on = [
    google_secret_manager_secret_version.database_url, google_secret_manager_secret_iam_member.dashboard,
    google_pubsub_topic_iam_member.dashboard_publisher,
  ]
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
