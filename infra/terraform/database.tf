# The state store: Cloud SQL for PostgreSQL with a private IP only (no public address, no authorized
# networks), on a VPC of its own peered with Google's service producer network (private services
# access). The functions that use it (local.functions[*].database) and the dashboard reach it through
# a Serverless VPC Access connector, over TLS. The password is generated here, and the URL that
# carries it is stored in Secret Manager (eventmgmt-database-url), from where the functions and the
# dashboard read it as EVENTMGMT_DATABASE_URL; it is in Terraform's state, as every generated secret is.

resource "google_compute_network" "eventmgmt" {
  name                    = "eventmgmt"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.api]
}

# Private services access: an address range of the VPC reserved for Google's service producers,
# and the peering that puts the Cloud SQL instance's private IP in it.
resource "google_compute_global_address" "private_services" {
  name          = "eventmgmt-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.eventmgmt.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.eventmgmt.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# Serverless VPC Access: how Cloud Run functions and services send to the VPC. Used with egress
# PRIVATE_RANGES_ONLY, so only the database's private address goes through it.
resource "google_vpc_access_connector" "connector" {
  name          = "eventmgmt"
  region        = var.region
  network       = google_compute_network.eventmgmt.name
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 3
  depends_on    = [google_project_service.api]
}

resource "google_sql_database_instance" "state" {
  name                = var.database_instance
  database_version    = var.database_version
  region              = var.region
  deletion_protection = true

  settings {
    tier              = var.database_tier
    edition           = "ENTERPRISE"
    availability_type = var.database_availability_type
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled    = false # NOTE: no public IP; reachable from the VPC only
      private_network = google_compute_network.eventmgmt.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    database_flags {
      name  = "max_connections"
      value = tostring(var.database_max_connections)
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "eventmgmt" {
  name     = "eventmgmt"
  instance = google_sql_database_instance.state.name
}

# NOTE: letters and digits only, so the password needs no escaping in the URL.
resource "random_password" "database" {
  length  = 40
  special = false
}

resource "google_sql_user" "eventmgmt" {
  name     = "eventmgmt"
  instance = google_sql_database_instance.state.name
  password = random_password.database.result
}

# What EVENTMGMT_DATABASE_URL holds: the private address, the generated password, TLS required.
resource "google_secret_manager_secret_version" "database_url" {
  secret = google_secret_manager_secret.secret["database-url"].id
  secret_data = format(
    "postgresql://%s:%s@%s:5432/%s?sslmode=require",
    google_sql_user.eventmgmt.name,
    random_password.database.result,
    google_sql_database_instance.state.private_ip_address,
    google_sql_database.eventmgmt.name,
  )
}
