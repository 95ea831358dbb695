from rest_framework import serializers

from apps.core.serializers import StrictSerializer


class LoginSerializer(StrictSerializer):
    email = serializers.EmailField()
    password = serializers.CharField(min_length=1, trim_whitespace=False)


class LoginResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class LogoutResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
