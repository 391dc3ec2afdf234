"""Kestra plugins that talk to a vendor's cloud or SaaS: refused by name, with what they need.

A flow using one of them cannot run here whatever the executor does (there is no such service
on the host), so validation says which service it needs instead of "unknown task type". Plugins
for software one can run oneself and that this executor does not implement keep the generic
message.
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
    "gitlab": "GitLab's API",
    "jira": "Atlassian Jira",
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
    "zulip": "a Zulip server's webhook",
    "telegram": "Telegram's API",
    "twilio": "Twilio",
    "sendgrid": "SendGrid",
    "pagerduty": "PagerDuty",
    "opsgenie": "Opsgenie",
    "odoo": "an Odoo server's API",
    "n8n": "an n8n server",
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


def vendor_service(task_type: str) -> tuple[str, str] | None:
    """``(plugin, service)`` when ``task_type`` belongs to a vendor's plugin, else None.

    ``io.kestra.plugin.openai.ChatCompletion`` -> ``("openai", "OpenAI's service")``; the longest
    package match wins (``jdbc.snowflake`` before ``jdbc``).
    """
    if not task_type.startswith(_P):
        return None
    parts = task_type[len(_P) :].split(".")[:-1]
    for size in range(len(parts), 0, -1):
        package = ".".join(parts[:size])
        if package in SERVICES:
            return package, SERVICES[package]
    return None


def refusal(task_type: str) -> str | None:
    """The one-line refusal for a vendor plugin's task, or None for any other unknown type."""
    found = vendor_service(task_type)
    if found is None:
        return None
    plugin, service = found
    return f"{task_type}: the {plugin} plugin needs {service}, which this executor does not run"
