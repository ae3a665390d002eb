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
  type    = string
  default = ""
}

variable "prometheus_url" {
  type    = string
  default = ""
}
