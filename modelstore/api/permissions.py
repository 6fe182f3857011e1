"""Who may manage model versions: a Django model permission per action; superusers have all."""

from rest_framework.permissions import BasePermission


class HasModelPermission(BasePermission):
    """Allow an authenticated user holding ``perm``; anonymous users get 401, others 403."""

    perm = ""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(self.perm))


class CanView(HasModelPermission):
    """As in the admin: viewing model versions takes the view or the change permission."""

    perm = "modelstore.view_modelversion"
    message = "Listing and reading model versions needs the modelstore.view_modelversion permission."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated) and (
            user.has_perm(self.perm) or user.has_perm("modelstore.change_modelversion")
        )


class CanUpload(HasModelPermission):
    perm = "modelstore.add_modelversion"
    message = "Uploading a model version needs the modelstore.add_modelversion permission."


class CanVerify(HasModelPermission):
    perm = "modelstore.change_modelversion"
    message = "Verifying a model version needs the modelstore.change_modelversion permission."


class CanActivate(HasModelPermission):
    perm = "modelstore.activate_modelversion"
    message = "Activating or rolling back needs the modelstore.activate_modelversion permission."


class CanDownload(HasModelPermission):
    perm = "modelstore.view_modelversion"
    message = "Downloading a model version's file needs the modelstore.view_modelversion permission."
