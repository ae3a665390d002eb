variable "project" {
  type        = string
  description = "Google Cloud project id"
}

variable "region" {
  type    = string
  default = "europe-west1"
}

variable "archive_bucket" {
  type        = string
  description = "Name of the archive bucket (retention tiers under hot/ and cold/)"
}

variable "source_dir" {
  type        = string
  default     = "../../build/functions"
  description = "Where `make build` left the function bundles"
}

variable "dashboard_url" {
  type        = string
  default     = ""
  description = "Where notifications link to, when a custom domain or proxy fronts the dashboard; default the Cloud Run service's own URL (output dashboard_url)"
  validation {
    condition     = var.dashboard_url == "" || can(regex("^https?://[^/:]+", var.dashboard_url))
    error_message = "dashboard_url is empty or an http(s) URL."
  }
}

variable "python_runtime" {
  type        = string
  default     = "python312"
  description = "Cloud Run functions runtime of every function"
  # NOTE: of the Python runtimes Cloud Run functions offers, the ones the bundles' pinned requirements
  # install on: python310 and python311 near their end of support (google-api-core warns for 3.11),
  # and python314 has no wheels for the pins of pydantic-core, psycopg-binary and PyYAML.
  validation {
    condition     = contains(["python312", "python313"], var.python_runtime)
    error_message = "python_runtime must be python312 or python313."
  }
}

variable "dashboard_image" {
  type        = string
  default     = ""
  description = "The image of infra/container/Dockerfile for the dashboard; default <region>-docker.pkg.dev/<project>/eventmgmt/eventmgmt:latest (push a new tag and set it here to roll out a change)"
}

variable "dashboard_invokers" {
  type        = list(string)
  default     = []
  description = "Members who may open the dashboard (roles/run.invoker), e.g. group:oncall@example.com"
}

variable "database_instance" {
  type    = string
  default = "eventmgmt"
}

variable "database_version" {
  type        = string
  default     = "POSTGRES_15"
  description = "The PostgreSQL major version the tests run against"
}

variable "database_tier" {
  type        = string
  default     = "db-custom-2-7680"
  description = "Cloud SQL machine type (Enterprise edition); db-custom-2-7680 is 2 vCPU, 7.5 GB"
}

variable "database_max_connections" {
  type        = number
  default     = 400
  description = "PostgreSQL max_connections (docs/deploy.md counts what the functions and the dashboard may open)"
}

variable "database_availability_type" {
  type        = string
  default     = "REGIONAL"
  description = "REGIONAL (a standby in another zone, failover) or ZONAL"
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.database_availability_type)
    error_message = "database_availability_type must be REGIONAL or ZONAL."
  }
}

variable "connector_cidr" {
  type        = string
  default     = "10.8.0.0/28"
  description = "An unused /28 of the eventmgmt VPC for the Serverless VPC Access connector"
}

variable "prometheus_url" {
  type    = string
  default = ""
}
