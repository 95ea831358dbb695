from rest_framework import serializers

from apps.jobs.choices import JobStatus
from apps.jobs.models import Job, JobLogLine


class JobStatusResponseSerializer(serializers.ModelSerializer):
    site_id = serializers.UUIDField(read_only=True, allow_null=True)
    environment_id = serializers.UUIDField(read_only=True, allow_null=True)
    node_id = serializers.UUIDField(read_only=True, allow_null=True)
    attempt_count = serializers.IntegerField(read_only=True, min_value=0)
    max_attempts = serializers.IntegerField(read_only=True, min_value=1)

    class Meta:
        model = Job
        fields = [
            "id",
            "job_type",
            "status",
            "site_id",
            "environment_id",
            "node_id",
            "attempt_count",
            "max_attempts",
            "run_after",
            "locked_at",
            "locked_by",
            "started_at",
            "finished_at",
            "error_code",
            "error_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class JobControlResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status = serializers.ChoiceField(choices=JobStatus.choices)


class JobLogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogLine
        fields = ["seq", "created_at", "level", "message"]
        read_only_fields = fields
