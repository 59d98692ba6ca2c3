from django.http import HttpResponse, JsonResponse
from django.urls import include, path


def me(request):
    if not request.user.is_authenticated:
        return HttpResponse("anonymous", status=401)
    return JsonResponse({"username": request.user.username, "email": request.user.email})


def healthz(request):
    return HttpResponse("ok")


def failed(request):
    return HttpResponse("login failed", status=403)


urlpatterns = [
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("me", me),
    path("failed", failed),
    path("healthz", healthz),
]
