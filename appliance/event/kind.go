package event

import causalityv1 "github.com/causality-io/causality/gen/causality/v1"

// Event categories (WIRE.md). The category of an event follows from which
// payload field of the envelope is set.
const (
	CategoryUser        = "user"
	CategoryScreen      = "screen"
	CategoryInteraction = "interaction"
	CategoryCommerce    = "commerce"
	CategorySystem      = "system"
	CategoryCustom      = "custom"
)

// Kind returns the category and type of an envelope per WIRE.md's table. The
// type of a custom event is its event_name, as sent (unsanitised, possibly
// empty). ok is false when no payload is set.
func Kind(e *causalityv1.EventEnvelope) (category, typ string, ok bool) {
	switch e.GetPayload().(type) {
	case *causalityv1.EventEnvelope_UserLogin:
		return CategoryUser, "login", true
	case *causalityv1.EventEnvelope_UserLogout:
		return CategoryUser, "logout", true
	case *causalityv1.EventEnvelope_UserSignup:
		return CategoryUser, "signup", true
	case *causalityv1.EventEnvelope_UserProfileUpdate:
		return CategoryUser, "profile_update", true

	case *causalityv1.EventEnvelope_ScreenView:
		return CategoryScreen, "view", true
	case *causalityv1.EventEnvelope_ScreenExit:
		return CategoryScreen, "exit", true

	case *causalityv1.EventEnvelope_ButtonTap:
		return CategoryInteraction, "button_tap", true
	case *causalityv1.EventEnvelope_SwipeGesture:
		return CategoryInteraction, "swipe", true
	case *causalityv1.EventEnvelope_ScrollEvent:
		return CategoryInteraction, "scroll", true
	case *causalityv1.EventEnvelope_TextInput:
		return CategoryInteraction, "text_input", true
	case *causalityv1.EventEnvelope_LongPress:
		return CategoryInteraction, "long_press", true
	case *causalityv1.EventEnvelope_DoubleTap:
		return CategoryInteraction, "double_tap", true

	case *causalityv1.EventEnvelope_ProductView:
		return CategoryCommerce, "product_view", true
	case *causalityv1.EventEnvelope_AddToCart:
		return CategoryCommerce, "add_to_cart", true
	case *causalityv1.EventEnvelope_RemoveFromCart:
		return CategoryCommerce, "remove_from_cart", true
	case *causalityv1.EventEnvelope_CheckoutStart:
		return CategoryCommerce, "checkout_start", true
	case *causalityv1.EventEnvelope_CheckoutStep:
		return CategoryCommerce, "checkout_step", true
	case *causalityv1.EventEnvelope_PurchaseComplete:
		return CategoryCommerce, "purchase_complete", true
	case *causalityv1.EventEnvelope_PurchaseFailed:
		return CategoryCommerce, "purchase_failed", true

	case *causalityv1.EventEnvelope_AppStart:
		return CategorySystem, "app_start", true
	case *causalityv1.EventEnvelope_AppBackground:
		return CategorySystem, "app_background", true
	case *causalityv1.EventEnvelope_AppForeground:
		return CategorySystem, "app_foreground", true
	case *causalityv1.EventEnvelope_AppCrash:
		return CategorySystem, "app_crash", true
	case *causalityv1.EventEnvelope_NetworkChange:
		return CategorySystem, "network_change", true
	case *causalityv1.EventEnvelope_PermissionRequest:
		return CategorySystem, "permission_request", true
	case *causalityv1.EventEnvelope_PermissionResult:
		return CategorySystem, "permission_result", true
	case *causalityv1.EventEnvelope_MemoryWarning:
		return CategorySystem, "memory_warning", true
	case *causalityv1.EventEnvelope_BatteryChange:
		return CategorySystem, "battery_change", true

	case *causalityv1.EventEnvelope_CustomEvent:
		return CategoryCustom, e.GetCustomEvent().GetEventName(), true
	}
	return "", "", false
}
