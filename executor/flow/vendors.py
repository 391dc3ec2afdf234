"""Kestra plugins this executor does not run, refused by name with what they need.

* A vendor's cloud or SaaS (:data:`SERVICES`): a flow using one cannot run here whatever the
  executor does (there is no such service on the host).
* A server one runs oneself that this executor has no task for (:data:`SELF_HOSTED`): its
  tasks are not built because they could not be tested here against a real server.
* Kestra's own test-suite tasks (``io.kestra.core.tasks.test.*``): no Kestra release has them.

Validation says which of these a task needs instead of "unknown task type"; any other unknown
type keeps the generic message and the list of supported types.
"""

from __future__ import annotations

_P = "io.kestra.plugin."

# plugin package (after io.kestra.plugin.) -> the service it needs
SERVICES: dict[str, str] = {
    "openai": "OpenAI's service",
    "anthropic": "Anthropic's service",
    "ai": "an AI model provider's service",
    "langchain4j": "an AI model provider's service",
    "gemini": "Google's Gemini service",
    "mistral": "Mistral AI's service",
    "deepseek": "DeepSeek's service",
    "perplexity": "Perplexity's service",
    "huggingface": "Hugging Face's service",
    "gcp": "Google Cloud",
    "googleworkspace": "Google Workspace",
    "azure": "Microsoft Azure",
    "microsoft": "Microsoft's cloud",
    "microsoft365": "Microsoft 365",
    "aws": "Amazon Web Services",
    "databricks": "Databricks",
    "snowflake": "Snowflake",
    "jdbc.snowflake": "Snowflake",
    "jdbc.redshift": "Amazon Redshift",
    "jdbc.databricks": "Databricks",
    "jdbc.bigquery": "Google BigQuery",
    "airbyte": "Airbyte's API",
    "fivetran": "Fivetran",
    "hightouch": "Hightouch",
    "dbt.cloud": "dbt Cloud",
    "modal": "Modal's cloud",
    "github": "GitHub's API",
    "slack.app": "Slack's API",
    "hubspot": "HubSpot",
    "salesforce": "Salesforce",
    "stripe": "Stripe",
    "shopify": "Shopify",
    "notion": "Notion",
    "airtable": "Airtable",
    "apify": "Apify",
    "dropbox": "Dropbox",
    "cloudflare": "Cloudflare's API",
    "zenduty": "Zenduty",
    "telegram": "Telegram's API",
    "twilio": "Twilio",
    "sendgrid": "SendGrid",
    "pagerduty": "PagerDuty",
    "opsgenie": "Opsgenie",
    "ee": "Kestra Enterprise",
    "digitalocean": "DigitalOcean",
    "alibaba": "Alibaba Cloud",
    "huawei": "Huawei Cloud",
    "clevercloud": "Clever Cloud",
    "meta": "Meta's API",
    "linkedin": "LinkedIn's API",
    "monday": "monday.com",
    "todoist": "Todoist",
    "trello": "Trello",
    "pipedrive": "Pipedrive",
    "klaviyo": "Klaviyo",
    "payfit": "PayFit",
    "deel": "Deel",
    "pennylane": "Pennylane",
    "figma": "Figma",
    "servicenow": "ServiceNow",
    "aikido": "Aikido",
    "metaplane": "Metaplane",
    "fastly": "Fastly",
    "sent": "Sent",
    "motherduck": "MotherDuck",
}


# plugin package -> the server it talks to (see the module's docstring)
SELF_HOSTED: dict[str, str] = {
    "mongodb": "a MongoDB server",
    "elasticsearch": "an Elasticsearch server",
    "opensearch": "an OpenSearch server",
    "couchbase": "a Couchbase server",
    "jdbc.druid": "an Apache Druid server",
    "jdbc.dremio": "a Dremio server",
    "kvm": "a libvirt (KVM) host",
    "proxmox": "a Proxmox VE server",
    "kubernetes": "a Kubernetes cluster",
}

_TEST_TASKS = "io.kestra.core.tasks.test."


def _plugin(task_type: str, table: dict[str, str]) -> tuple[str, str] | None:
    """``(package, what it needs)`` of the longest package of ``task_type`` in ``table``."""
    if not task_type.startswith(_P):
        return None
    parts = task_type[len(_P) :].split(".")[:-1]
    for size in range(len(parts), 0, -1):
        package = ".".join(parts[:size])
        if package in table:
            return package, table[package]
    return None


def vendor_service(task_type: str) -> tuple[str, str] | None:
    """``(plugin, service)`` when ``task_type`` belongs to a vendor's plugin, else None.

    ``io.kestra.plugin.openai.ChatCompletion`` -> ``("openai", "OpenAI's service")``; the longest
    package match wins (``jdbc.snowflake`` before ``jdbc``).
    """
    return _plugin(task_type, SERVICES)


def refusal(task_type: str) -> str | None:
    """The one-line refusal for a task of a plugin named here, or None for any other type."""
    found = vendor_service(task_type)
    if found is not None:
        plugin, service = found
        return f"{task_type}: the {plugin} plugin needs {service}, which this executor does not run"
    found = _plugin(task_type, SELF_HOSTED)
    if found is not None:
        plugin, server = found
        return f"{task_type}: needs {server}; this executor does not run the {plugin} plugin"
    if task_type.startswith(_TEST_TASKS):
        return (
            f"{task_type}: a task of Kestra's own test suite, in no Kestra release; this executor"
            " does not run it"
        )
    return None
