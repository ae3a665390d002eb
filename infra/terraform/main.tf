# eventmgmt on Google Cloud: Pub/Sub topics (each with a dead-letter topic), Cloud Run functions
# (gen2) with Eventarc Pub/Sub triggers, Cloud Scheduler jobs, the archive bucket with lifecycle rules
# that mirror the retention policy, and secrets in Secret Manager. database.tf: the state store (Cloud
# SQL for PostgreSQL on a private IP, reached through a Serverless VPC Access connector);
# dashboard.tf: the dashboard and read API on Cloud Run.

terraform {
  required_providers {
    google = { source = "hashicorp/google", version = ">= 5.20" }
    random = { source = "hashicorp/random", version = ">= 3.5" }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  topics = ["events-raw", "events-enriched", "events-correlated"]

  # function name -> entry point, trigger topic (null for HTTP), memory, whether it uses the state
  # store (its main.py calls engine_for(settings.db_url)), at most how many instances. Only the
  # functions with `database` get EVENTMGMT_DATABASE_URL and the VPC connector. The scheduled ones
  # run once a minute or a day: two instances are plenty, and bound their database connections.
  functions = {
    ingest         = { entry_point = "ingest", topic = null, memory = "512M", database = false, max_instances = 50 }
    enrich         = { entry_point = "enrich", topic = "events-raw", memory = "512M", database = false, max_instances = 50 }
    correlate      = { entry_point = "correlate", topic = "events-enriched", memory = "1Gi", database = true, max_instances = 20 }
    route          = { entry_point = "route", topic = "events-correlated", memory = "512M", database = true, max_instances = 50 }
    archive        = { entry_point = "archive", topic = "events-correlated", memory = "512M", database = false, max_instances = 50 }
    # NOTE: one instance: a run reads the state object, compares and writes it back; two at once
    # would race on it.
    collector      = { entry_point = "collect", topic = null, memory = "512M", database = false, max_instances = 1 }
    retention      = { entry_point = "retention", topic = null, memory = "512M", database = true, max_instances = 2 }
    correlate-tick = { entry_point = "correlate_tick", topic = null, memory = "512M", source = "correlate", database = true, max_instances = 2 }
    route-flush    = { entry_point = "route_flush", topic = null, memory = "512M", source = "route", database = true, max_instances = 2 }
  }

  # The collector's state (what it saw last run) must outlive its instances, whose EVENTMGMT_HOME is
  # their own /tmp: an object in the archive bucket, outside the hot/ and cold/ prefixes that the
  # lifecycle rules and retention age out. The functions' account may read and write it
  # (archive_writer below).
  collector_state_url = "gs://${google_storage_bucket.archive.name}/state/collector-state.json"

  # Variables only some functions get.
  function_environment = {
    collector = { EVENTMGMT_COLLECTOR_STATE_URL = local.collector_state_url }
  }

  schedules = {
    collector      = "* * * * *"
    correlate-tick = "* * * * *"
    route-flush    = "* * * * *"
    retention      = "17 3 * * *"
  }

  # Mirrors the `retention:` section of shared/eventmgmt/defaults.yaml (tests/infra checks they agree):
  # ages count from object creation; a day's partition is written that day, hence N + 1.
  lifecycle_rules = [
    { action = "Delete", storage_class = null, age = 91, prefixes = ["hot/alert/", "cold/alert/"] },
    { action = "Delete", storage_class = null, age = 31, prefixes = ["hot/metric/", "cold/metric/"] },
    { action = "SetStorageClass", storage_class = "COLDLINE", age = 31, prefixes = ["hot/log/"] },
    { action = "Delete", storage_class = null, age = 366, prefixes = ["hot/log/", "cold/log/"] },
    { action = "Delete", storage_class = null, age = 366, prefixes = ["hot/audit/", "cold/audit/"] },
    { action = "Delete", storage_class = null, age = 91, prefixes = ["hot/incident/", "cold/incident/"] },
    { action = "SetStorageClass", storage_class = "COLDLINE", age = 91, prefixes = ["hot/change/"] },
    { action = "Delete", storage_class = null, age = 366, prefixes = ["hot/change/", "cold/change/"] },
    { action = "Delete", storage_class = null, age = 31, prefixes = ["hot/info/", "cold/info/"] },
  ]

  secrets = ["ingest-token", "database-url", "pagerduty-routing-key", "slack-webhook-url"]
}

resource "google_pubsub_topic" "topic" {
  for_each = toset(local.topics)
  name     = each.value
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = toset(local.topics)
  name     = "${each.value}-dead-letter"
}

resource "google_pubsub_subscription" "dead_letter_inspect" {
  for_each                   = toset(local.topics)
  name                       = "${each.value}-dead-letter-inspect"
  topic                      = google_pubsub_topic.dead_letter[each.value].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
}

resource "google_service_account" "functions" {
  account_id   = "eventmgmt-functions"
  display_name = "eventmgmt functions"
}

resource "google_project_iam_member" "functions" {
  for_each = toset(["roles/pubsub.publisher", "roles/secretmanager.secretAccessor", "roles/cloudsql.client",
  "roles/run.invoker", "roles/eventarc.eventReceiver"])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_storage_bucket" "archive" {
  name                        = var.archive_bucket
  location                    = var.region
  uniform_bucket_level_access = true

  dynamic "lifecycle_rule" {
    for_each = local.lifecycle_rules
    content {
      action {
        type          = lifecycle_rule.value.action
        storage_class = lifecycle_rule.value.storage_class
      }
      condition {
        age            = lifecycle_rule.value.age
        matches_prefix = lifecycle_rule.value.prefixes
      }
    }
  }
}

resource "google_storage_bucket_iam_member" "archive_writer" {
  bucket = google_storage_bucket.archive.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_storage_bucket" "sources" {
  name                        = "${var.project}-eventmgmt-sources"
  location                    = var.region
  uniform_bucket_level_access = true
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  name     = "${each.key}-${filemd5("${var.source_dir}/${lookup(each.value, "source", each.key)}.zip")}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${var.source_dir}/${lookup(each.value, "source", each.key)}.zip"
}

resource "google_secret_manager_secret" "secret" {
  for_each  = toset(local.secrets)
  secret_id = "eventmgmt-${each.value}"
  replication {
    auto {}
  }
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions
  name     = "eventmgmt-${each.key}"
  location = var.region

  build_config {
    runtime     = var.python_runtime
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory      = each.value.memory
    timeout_seconds       = 120
    max_instance_count    = each.value.max_instances
    service_account_email = google_service_account.functions.email
    # NOTE: Cloud SQL has a private IP only; the functions that use it reach it through the
    # connector, and everything else they call (Pub/Sub, Storage, receivers) stays on the default route.
    vpc_connector                 = each.value.database ? google_vpc_access_connector.connector.id : null
    vpc_connector_egress_settings = each.value.database ? "PRIVATE_RANGES_ONLY" : null
    environment_variables = merge({
      GOOGLE_CLOUD_PROJECT     = var.project
      EVENTMGMT_TRANSPORT      = "pubsub"
      EVENTMGMT_HOME           = "/tmp/eventmgmt"
      EVENTMGMT_ARCHIVE_URL    = "gs://${google_storage_bucket.archive.name}"
      EVENTMGMT_DASHBOARD_URL  = local.dashboard_url
      EVENTMGMT_PROMETHEUS_URL = var.prometheus_url
    }, lookup(local.function_environment, each.key, {}))
    # NOTE: the URL, with the generated password (database.tf), is read from Secret Manager when an
    # instance starts; it is in no variable and no file.
    dynamic "secret_environment_variables" {
      for_each = each.value.database ? ["database-url"] : []
      content {
        key        = "EVENTMGMT_DATABASE_URL"
        project_id = var.project
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
    secret_environment_variables {
      key        = "EVENTMGMT_INGEST_TOKEN"
      project_id = var.project
      secret     = google_secret_manager_secret.secret["ingest-token"].secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "EVENTMGMT_PAGERDUTY_ROUTING_KEY"
      project_id = var.project
      secret     = google_secret_manager_secret.secret["pagerduty-routing-key"].secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "EVENTMGMT_SLACK_WEBHOOK_URL"
      project_id = var.project
      secret     = google_secret_manager_secret.secret["slack-webhook-url"].secret_id
      version    = "latest"
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.topic == null ? [] : [each.value.topic]
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = google_pubsub_topic.topic[event_trigger.value].id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.functions.email
    }
  }

  # NOTE: the secret's "latest" version must exist when a revision starts.
  depends_on = [google_secret_manager_secret_version.database_url]
}

resource "google_cloud_scheduler_job" "job" {
  for_each  = local.schedules
  name      = "eventmgmt-${each.key}"
  schedule  = each.value
  time_zone = "Etc/UTC"
  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.functions.email
    }
  }
}

# The APIs the state store, its network and the dashboard need (the functions' own, such as Cloud
# Functions, Eventarc, Pub/Sub, Scheduler and Secret Manager, are taken to be enabled already).
resource "google_project_service" "api" {
  for_each = toset([
    "compute.googleapis.com", "servicenetworking.googleapis.com", "sqladmin.googleapis.com",
    "vpcaccess.googleapis.com", "run.googleapis.com", "artifactregistry.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

output "ingest_url" {
  value = "${google_cloudfunctions2_function.function["ingest"].service_config[0].uri}/ingest"
}
