"""The file stores of this host, side by side: artifacts (execution files, ``kestra:///`` URIs),
namespace files, and the WorkingDirectory cache. Each is a directory under ``EXECUTOR_HOME``,
written only through temporary files renamed into place, never through a link."""
